//! The hostile-domain run (`tests/manifests/hostile.toml`): the control domain builds a
//! two-vCPU domain that throws seeded adversarial hypercalls at the core beside a witness
//! domain, destroys it, and compares the free frames with those before it was built.
//! `cargo xtask test` runs it with a new seed each time; `cargo xtask soak` runs it longer or
//! replays a seed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::qemu::{QemuConfig, DEFAULT_CPU};
use crate::runner::Running;
use crate::workspace::{self, CoreOptions};

/// Calls per run in `cargo xtask test`.
pub const CI_CALLS: u64 = 1_000_000;

/// The manifest's hostile command line, which a run rewrites with its seed and count.
const DEFAULT_ARGS: &str = "seed=1,calls=1000000";

/// How long the hostile domain may take for each 100,000 calls, and to boot: generous, for a
/// loaded 2-CPU CI machine; a run that stops making progress fails after this.
const STEP_TIMEOUT: Duration = Duration::from_secs(240);

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed, to replay the run with `cargo xtask soak --seed`.
    pub seed: u64,
    /// Calls made, both vCPUs.
    pub calls: u64,
    /// Wall time from the first call to the last.
    pub elapsed: Duration,
    /// Witness rounds that found nothing changed.
    pub witness_rounds: u64,
    /// Free pages before the hostile domain was built and after it was destroyed.
    pub free_pages: u64,
}

impl Outcome {
    /// The summary line CI prints.
    pub fn summary(&self) -> String {
        format!(
            "hostile: {} calls, 0 core panics, witness unchanged, frames restored (seed {}, {:.0} calls/s of wall time over {:.1} s, {} witness rounds, {} pages free before and after)",
            self.calls,
            self.seed,
            self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.elapsed.as_secs_f64(),
            self.witness_rounds,
            self.free_pages
        )
    }
}

/// A seed from the clock (printed by every run, so a failure can be replayed).
pub fn fresh_seed() -> u64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (now.as_nanos() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16
}

/// Runs `calls` hostile calls with `seed` (limited to the hypercall numbers `only` names,
/// `+`-separated, if given), printing progress, and checks every outcome the
/// issue names: no core panic, every answer a Xen error code or a success, the witness unchanged
/// in every round, and the free frames restored after the hostile domain is destroyed.
pub fn run(calls: u64, seed: u64, only: Option<&str>) -> Result<Outcome> {
    ensure!(calls >= 2, "at least 2 calls (one per vCPU)");
    let root = workspace::root();
    let template = root.join("tests/manifests/hostile.toml");
    let text = std::fs::read_to_string(&template)
        .with_context(|| format!("reading {}", template.display()))?;
    ensure!(text.contains(DEFAULT_ARGS), "{} no longer says {DEFAULT_ARGS}", template.display());
    let only = only.map(|numbers| format!(",only={numbers}")).unwrap_or_default();
    let text = text.replace(DEFAULT_ARGS, &format!("seed={seed},calls={calls}{only}"));
    let directory = root.join("target/hostile");
    std::fs::create_dir_all(&directory)?;
    let manifest: PathBuf = directory.join("hostile.toml");
    std::fs::write(&manifest, text)?;
    println!("xtask: hostile: seed {seed}, {calls} calls (replay: cargo xtask soak --calls {calls} --seed {seed})");
    let image = workspace::build_system(&manifest, CoreOptions::default())?;
    let config = QemuConfig {
        cpus: 2,
        memory_mib: 1024,
        kernel: image.kernel.clone(),
        bundle: Some(image.bundle.clone()),
        append: String::new(),
        icount: false,
        interactive: false,
        cpu: DEFAULT_CPU,
        xl_socket: None,
    };
    let mut running = Running::start(&config)?;
    for pattern in ["FAIL", "panicked", "crashing it", "shut down: crash", "shut down: watchdog"] {
        running.forbid(pattern);
    }
    let step = |running: &mut Running, marker: &str| -> Result<String> {
        running.wait_for(marker, STEP_TIMEOUT).map_err(|error| anyhow::anyhow!("{error}"))
    };
    running
        .wait_for_all(&["control: the control domain is up", "witness: ready"], STEP_TIMEOUT)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    step(&mut running, &format!("hostile: seed {seed}, {calls} calls"))?;
    let started = Instant::now();
    let mut witness_rounds = 0;
    for done in (100_000..calls).step_by(100_000) {
        // Witness rounds go by meanwhile; any FAIL of theirs is forbidden.
        step(&mut running, &format!("hostile: {done} calls"))?;
        println!("xtask: hostile: {done} calls after {:.1} s", started.elapsed().as_secs_f64());
    }
    step(&mut running, &format!("hostile: done {calls} calls"))?;
    let elapsed = started.elapsed();
    let line = step(&mut running, "control: PASS built, listed and destroyed domain")?;
    let free_pages =
        number_after(&line, "; ").context("the control domain's PASS line names no page count")?;
    // A witness round that starts after the destruction sees its grant to the hostile domain
    // idle again (GTF_reading cleared with the mappings).
    for _ in 0..4 {
        let line = step(&mut running, "witness: round")?;
        witness_rounds = number_after(&line, "witness: round ").unwrap_or(witness_rounds);
        if line.contains("unchanged, ref 10 idle") {
            return Ok(Outcome { seed, calls, elapsed, witness_rounds, free_pages });
        }
    }
    bail!("the witness's grant to the hostile domain stayed in use after it was destroyed");
}

/// The number that starts right after the first `prefix` in `line`.
fn number_after(line: &str, prefix: &str) -> Option<u64> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_after_their_prefix() {
        let line =
            "control: PASS built, listed and destroyed domain 3; 241113 pages free, as before";
        assert_eq!(number_after(line, "; "), Some(241_113));
        assert_eq!(number_after("(d2) witness: round 17 unchanged", "witness: round "), Some(17));
        assert_eq!(number_after("nothing here", "; "), None);
    }
}
