//! Checks of the service domains' logic crates that need the nightly toolchain: coverage-guided
//! fuzzing runs of the xenstore logic's `wire_and_store` target
//! (`domains/xenstore-stub/logic/fuzz`) and of the device model logic's `records_and_rings`
//! target (`domains/device-model/logic/fuzz`), and the xenstore logic's tests under Miri.
//!
//! Neither needs cargo-fuzz: each fuzz target is a plain cargo project (its own workspace)
//! built with the flags cargo-fuzz passes (SanitizerCoverage with 8-bit counters, PC table and
//! comparison tracing, `--cfg fuzzing`, debug assertions, AddressSanitizer) into `target/fuzz`,
//! and run directly. A missing nightly toolchain or Miri component is installed with rustup
//! first.
//!
//! # Invariants
//! - A target's corpus lives in `target/fuzz/corpus/<target>` and only grows; crash inputs land
//!   in `target/fuzz/artifacts/<target>/`.
//! - Child cargo processes get none of the outer cargo's toolchain or flag variables, so
//!   `+nightly` and the fuzzing flags are what they build with.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// A libFuzzer target: its project's manifest (relative to the workspace root), its binary,
/// and the seed inputs its corpus starts with.
struct FuzzTarget {
    manifest: &'static str,
    name: &'static str,
    seeds: fn() -> Vec<Vec<u8>>,
}

/// The xenstore logic's wire parser and store.
const XENSTORE: FuzzTarget = FuzzTarget {
    manifest: "domains/xenstore-stub/logic/fuzz/Cargo.toml",
    name: "wire_and_store",
    seeds: xenstore_seeds,
};

/// The device model logic's records, registers and rings.
const DEVICE_MODEL: FuzzTarget = FuzzTarget {
    manifest: "domains/device-model/logic/fuzz/Cargo.toml",
    name: "records_and_rings",
    seeds: device_model_seeds,
};
/// Sanitizers need an explicit target, so the flags skip build scripts and proc macros.
const FUZZ_TRIPLE: &str = "x86_64-unknown-linux-gnu";
/// What cargo-fuzz passes (`cargo fuzz build` defaults: sancov-module, level 4, inline 8-bit
/// counters, PC table, trace-compares, `--cfg fuzzing`, debug assertions, ASan).
const FUZZ_RUSTFLAGS: &[&str] = &[
    "--cfg fuzzing",
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cllvm-args=-sanitizer-coverage-stack-depth",
    "-Cdebug-assertions",
    "-Zsanitizer=address",
];
/// The crate Miri runs.
const MIRI_PACKAGE: &str = "xenolith-xenstore";
/// Variables an outer `cargo xtask` may set that would override the nightly toolchain or the
/// fuzzing flags.
const INHERITED: &[&str] = &[
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
];

/// `cargo +nightly` in `root`, without the outer cargo's toolchain variables.
fn nightly_cargo(root: &Path) -> Command {
    let mut command = Command::new("cargo");
    command.current_dir(root).arg("+nightly");
    for name in INHERITED {
        command.env_remove(name);
    }
    command
}

/// Runs `command`, failing with `what` and the output's tail if it fails to start or exits
/// non-zero.
fn run(command: &mut Command, what: &str) -> Result<Output> {
    let output =
        command.output().with_context(|| format!("{what}: could not start {command:?}"))?;
    if !output.status.success() {
        bail!("{what} failed ({}):\n{}", output.status, tail(&output, 60));
    }
    Ok(output)
}

/// The last `lines` lines of a process's stdout and stderr.
fn tail(output: &Output, lines: usize) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Installs the nightly toolchain if `cargo +nightly` does not run.
fn ensure_nightly(root: &Path) -> Result<()> {
    let present = nightly_cargo(root).arg("--version").output().is_ok_and(|o| o.status.success());
    if !present {
        run(
            Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]),
            "installing the nightly toolchain (rustup toolchain install nightly --profile minimal)",
        )?;
    }
    Ok(())
}

/// Installs Miri and the standard library's source if `cargo +nightly miri` does not run.
fn ensure_miri(root: &Path) -> Result<()> {
    ensure_nightly(root)?;
    let present =
        nightly_cargo(root).args(["miri", "--version"]).output().is_ok_and(|o| o.status.success());
    if !present {
        run(
            Command::new("rustup").args([
                "component",
                "add",
                "miri",
                "rust-src",
                "--toolchain",
                "nightly",
            ]),
            "installing Miri (rustup component add miri rust-src --toolchain nightly)",
        )?;
    }
    Ok(())
}

/// One framed xenstore request (`io/xs_wire.h`: four little-endian `u32`, then the payload).
fn request(type_: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + payload.len());
    for field in [type_, 1, tx_id, payload.len() as u32] {
        bytes.extend_from_slice(&field.to_le_bytes());
    }
    bytes.extend_from_slice(payload);
    bytes
}

/// Seed inputs in `wire_and_store`'s chunk format (`[control, length, bytes]`, control =
/// operation << 3 | domid): a few realistic sessions, so the fuzzer starts past the framing.
fn xenstore_seeds() -> Vec<Vec<u8>> {
    // (domid, type, tx, payload); type numbers from io/xs_wire.h.
    type Request<'a> = (u8, u32, u32, &'a [u8]);
    let sessions: [&[Request]; 4] = [
        &[
            (1, 11, 0, b"a/b\0value"),
            (1, 4, 0, b"a\0tok\0"),
            (1, 2, 0, b"a/b\0"),
            (1, 1, 0, b"a\0"),
            (1, 13, 0, b"a\0"),
        ],
        &[
            (1, 6, 0, b"\0"),
            (1, 11, 1, b"x\0v"),
            (1, 2, 1, b"x\0"),
            (1, 7, 1, b"T\0"),
            (2, 22, 0, b"/local/domain/2\x000\0"),
        ],
        &[
            (0, 4, 0, b"@introduceDomain\0i\0"),
            (0, 8, 0, b"5\x004096\x003\0"),
            (0, 19, 0, b"3\x001\0"),
            (3, 2, 0, b"/local/domain/1/name\0"),
            (0, 9, 0, b"5\0"),
            (0, 0, 0, b"quota\0"),
        ],
        &[
            (1, 11, 0, b"p\0v"),
            (1, 14, 0, b"p\0n1\0r2\0"),
            (2, 2, 0, b"/local/domain/1/p\0"),
            (2, 3, 0, b"/local/domain/1/p\0"),
            (1, 12, 0, b"q/r\0"),
            (1, 21, 0, b"\0"),
        ],
    ];
    sessions
        .iter()
        .map(|session| {
            let mut input = Vec::new();
            for &(domid, type_, tx_id, payload) in session.iter() {
                let message = request(type_, tx_id, payload);
                input.extend_from_slice(&[domid, message.len() as u8]);
                input.extend_from_slice(&message);
            }
            // A snapshot round trip (operation 31) at the end.
            input.extend_from_slice(&[31 << 3, 0]);
            input
        })
        .collect()
}

/// Reads `Done N runs in S second(s)` from libFuzzer's output.
fn runs_and_seconds(stderr: &str) -> Option<(u64, u64)> {
    let line = stderr.lines().rev().find(|line| line.starts_with("Done "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    Some((words.get(1)?.parse().ok()?, words.get(4)?.parse().ok()?))
}

/// Seed inputs in `records_and_rings`' operation format (its module doc): a blk device set up
/// by a driver, a read request of sector 1 built in RAM (header, data and status descriptors,
/// the available ring), its notify; then the same with a restart of the model and a rebuild of
/// the target after it; so the fuzzer starts at the rings.
fn device_model_seeds() -> Vec<Vec<u8>> {
    // Queue 0's descriptor table is at RAM offset 0, its available ring at 0x200 (the target's
    // set-up operation puts them there).
    let mut table = Vec::new();
    for (address, length, flags, next) in
        [(0x800u64, 16u32, 1u16, 1u16), (0x900, 512, 3, 2), (0xb00, 1, 2, 0)]
    {
        table.extend_from_slice(&(0x4000_0000 + address).to_le_bytes());
        table.extend_from_slice(&length.to_le_bytes());
        table.extend_from_slice(&flags.to_le_bytes());
        table.extend_from_slice(&next.to_le_bytes());
    }
    let ram_write = |at: u16, bytes: &[u8]| {
        let mut operation = vec![5];
        operation.extend_from_slice(&at.to_le_bytes());
        operation.push(bytes.len() as u8);
        operation.extend_from_slice(bytes);
        operation
    };
    // Set up the blk device (operation 8, no extra features, blk), write the chain, the
    // request header (VIRTIO_BLK_T_IN, sector 1) and the available ring (one entry, head 0),
    // then notify queue 0 (a 4-byte write of 0 at QueueNotify, 0x50).
    let mut request = vec![8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    request.extend(ram_write(0, &table));
    request.extend(ram_write(0x800, &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]));
    request.extend(ram_write(0x200, &[0, 0, 1, 0, 0, 0]));
    request.extend([0, 1, 0x50, 0, 0x0a, 0]);
    let mut restarted = request.clone();
    restarted.extend([9, 10, 11, 5]);
    vec![request, restarted]
}

/// Builds the xenstore logic's fuzz target and runs it for `seconds` (part of the test
/// command).
pub fn fuzz_xenstore(root: &Path, seconds: u64) -> Result<String> {
    fuzz(root, &XENSTORE, seconds)
}

/// Builds the device model logic's fuzz target and runs it for `seconds` (part of the test
/// command).
pub fn fuzz_device_model(root: &Path, seconds: u64) -> Result<String> {
    fuzz(root, &DEVICE_MODEL, seconds)
}

/// Builds `target` and runs it for `seconds` on its corpus (`target/fuzz/corpus/<name>`,
/// seeded when empty). Returns a one-line summary, or fails with libFuzzer's report and the
/// path of the crashing input.
fn fuzz(root: &Path, target: &FuzzTarget, seconds: u64) -> Result<String> {
    let FuzzTarget { manifest, name, seeds } = *target;
    ensure_nightly(root)?;
    let target_dir = root.join("target").join("fuzz");
    run(
        nightly_cargo(root)
            .args(["build", "--release", "--manifest-path", manifest])
            .args(["--target", FUZZ_TRIPLE, "--bin", name, "--target-dir"])
            .arg(&target_dir)
            .env("RUSTFLAGS", FUZZ_RUSTFLAGS.join(" ")),
        &format!("building the fuzz target {name}"),
    )?;
    let binary: PathBuf = target_dir.join(FUZZ_TRIPLE).join("release").join(name);
    let corpus = target_dir.join("corpus").join(name);
    let artifacts = target_dir.join("artifacts").join(name);
    for dir in [&corpus, &artifacts] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let empty = fs::read_dir(&corpus)
        .with_context(|| format!("reading {}", corpus.display()))?
        .next()
        .is_none();
    if empty {
        for (index, seed) in seeds().iter().enumerate() {
            let path = corpus.join(format!("seed-{index}"));
            fs::write(&path, seed).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let started = Instant::now();
    let output = Command::new(&binary)
        .current_dir(root)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg(&corpus)
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "fuzz {name} found a failure ({}); the input is in {}; reproduce with `{} <input>`:\n{}",
            output.status,
            artifacts.display(),
            binary.display(),
            tail(&output, 80)
        );
    }
    let (runs, secs) = runs_and_seconds(&stderr).unwrap_or((0, started.elapsed().as_secs()));
    let corpus_size = fs::read_dir(&corpus).map(|entries| entries.count()).unwrap_or(0);
    Ok(format!("fuzz {name}: {runs} runs in {secs} s, corpus {corpus_size} inputs, no crash"))
}

/// The crate's tests in two groups of about equal time, run side by side (Miri interprets on
/// one core; the machines have two): each half of the conformance cases, the unit tests with the
/// second. `random` and `snapshot` are left to the host run and the fuzzer: since every domain
/// carries init-dom0less's node set, each took Miri alone past the suite's time budget (over 8
/// minutes; why a few more nodes cost that much under Miri is to be found).
const MIRI_GROUPS: [&[&str]; 2] = [
    &["--test", "conformance", "--", "--exact", "conformance_first_part"],
    &["--lib", "--test", "conformance", "--", "--skip", "conformance_first_part"],
];

/// Runs every test of the xenstore logic crate under Miri (`cargo +nightly miri test`),
/// installing Miri first if needed: builds once, then runs the test targets in two parallel
/// groups. Returns a one-line summary with the tests passed and the time taken.
pub fn miri_xenstore(root: &Path) -> Result<String> {
    ensure_miri(root)?;
    let started = Instant::now();
    let miri = |extra: &[&str]| {
        let mut command = nightly_cargo(root);
        command.args(["miri", "test", "-p", MIRI_PACKAGE]).args(extra);
        if std::env::var_os("MIRIFLAGS").is_none() {
            // The crate has no unsafe code; Miri checks the standard library and dependencies
            // under it. Isolation stays on (the tests need no clock or files).
            command.env("MIRIFLAGS", "");
        }
        command
    };
    run(&mut miri(&["--no-run"]), "building the xenstore tests for Miri")?;
    let children = MIRI_GROUPS
        .iter()
        .map(|group| {
            let mut command = miri(group);
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
            command.spawn().with_context(|| format!("starting {command:?}"))
        })
        .collect::<Result<Vec<Child>>>()?;
    let mut passed: u64 = 0;
    let mut failures = Vec::new();
    for (child, group) in children.into_iter().zip(MIRI_GROUPS) {
        let output = child.wait_with_output().context("waiting for Miri")?;
        if !output.status.success() {
            failures.push(format!(
                "{} ({}):\n{}",
                group.join(" "),
                output.status,
                tail(&output, 60)
            ));
        }
        passed += String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.strip_prefix("test result: ok. "))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    if !failures.is_empty() {
        bail!("Miri on the xenstore logic crate failed: {}", failures.join("\n"));
    }
    Ok(format!("miri {MIRI_PACKAGE}: {passed} tests passed in {} s", started.elapsed().as_secs()))
}
