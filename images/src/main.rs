//! `cargo xtask`: build, boot, test and measure Xenolith. Run `cargo xtask help`.
#![forbid(unsafe_code)]

mod bench_net;
mod differential;
mod xenstore_checks;

use xenolith_images::{code_lines, debian, guest_tools, hostile, xl_client};

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use xenolith_images::manifest::Manifest;
use xenolith_images::qemu::{self, QemuConfig};
use xenolith_images::runner::Running;
use xenolith_images::toolchain;
use xenolith_images::workspace::{self, CoreOptions, CORE_TARGET, DOMAIN_TARGET};

const HELP: &str = "\
cargo xtask <command>

  run [MANIFEST] [--append ARGS]   build and boot a system (default images/default.toml);
                                   the consoles are on this terminal, Ctrl-A X quits QEMU
  xl [--timeout S] ARGS...         run `xl ARGS...` in the control domain of the system
                                   `cargo xtask run` boots (from another terminal): xl's output
                                   and exit status (answer within 60 s unless --timeout)
  build [MANIFEST]                 build the core and pack the system's boot bundle
  check MANIFEST...                validate manifests (file:line:column errors)
  test                             everything CI runs: format, lints, host and QEMU tests, the
                                   conformance suite, 1,000,000 hostile hypercalls with a fresh
                                   seed, xenstore and device-model fuzzing, Miri
  soak [--calls N] [--seed S] [--only A+B]
                                   the hostile domain's run, longer (10,000,000 calls), replaying
                                   a seed, or limited to some hypercall numbers
  test-host                        host unit and integration tests only
  test-qemu                        QEMU system tests only
  lint                             cargo fmt --check and clippy -D warnings: host, bare metal
                                   and the Linux guests' tools (aarch64-unknown-linux-musl)
  xenstore-checks                  fuzz the xenstore logic for 60 s and the device model's for
                                   30 s, then the xenstore logic's tests under Miri (nightly
                                   toolchain and Miri installed with rustup if absent)
  conformance                      the conformance guest on Xen 4.17 (fetched with apt) and on
                                   Xenolith, compared (docs/conformance.md)
  bench [fastpath|smp|boot|xl|net] deterministic figures under QEMU -icount shift=0 (or only
                                   issue 15's fast-path table, SMP scaling, boot, xl create
                                   and the control domain's restart, or netback's throughput
                                   and restart; `net rust`: the Rust netfronts' figures only)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|command| command == "xl") {
        return match xl(&args[1..]) {
            Ok(status) => ExitCode::from(status),
            Err(error) => {
                eprintln!("xtask: error: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let command = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    if !matches!(command, "help" | "--help" | "-h" | "check") {
        toolchain::ensure_targets(&workspace::root())?;
    }
    match command {
        "run" => run(rest),
        "build" => build(rest),
        "check" => check(rest),
        "test" => {
            qemu::ensure_installed()?;
            lint()?;
            cargo_test(&["--workspace"])?;
            differential::run()?;
            // The hostile run (QEMU on both CPUs) beside the xenstore checks (fuzzing, then Miri,
            // on one CPU): together they take little more than Miri alone.
            let hostile =
                std::thread::spawn(|| hostile_run(hostile::CI_CALLS, hostile::fresh_seed(), None));
            let checks = xenstore_checks();
            let hostile =
                hostile.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the hostile run panicked")));
            checks.and(hostile)
        }
        "soak" => {
            qemu::ensure_installed()?;
            let (calls, seed, only) = soak_options(rest)?;
            hostile_run(calls, seed, only.as_deref())
        }
        "xenstore-checks" => xenstore_checks(),
        "conformance" => {
            qemu::ensure_installed()?;
            differential::run()
        }
        "test-host" => cargo_test(&["--workspace", "--exclude", "xenolith-tests"]),
        "test-qemu" => {
            qemu::ensure_installed()?;
            cargo_test(&["--package", "xenolith-tests"])
        }
        "lint" => lint(),
        "bench" => match rest {
            [] => bench(),
            [only] if only == "fastpath" => {
                qemu::ensure_installed()?;
                fastpath_figures(&workspace::root(), Duration::from_secs(300))
            }
            [only] if only == "xl" => {
                qemu::ensure_installed()?;
                xl_figures(&workspace::root(), Duration::from_secs(300))
            }
            [only] if only == "boot" => {
                qemu::ensure_installed()?;
                let image = workspace::build_system(&default_manifest(), CoreOptions::default())?;
                boot_figures(&image)
            }
            [only] if only == "net" => {
                qemu::ensure_installed()?;
                bench_net::figures(&workspace::root(), Duration::from_secs(300))
            }
            [only, part] if only == "net" && part == "rust" => {
                qemu::ensure_installed()?;
                bench_net::rust_figures(&workspace::root(), Duration::from_secs(300)).map(drop)
            }
            [only] if only == "dm" => {
                qemu::ensure_installed()?;
                dm_figures(&workspace::root(), Duration::from_secs(300))
            }
            [only] if only == "smp" => {
                qemu::ensure_installed()?;
                smp_figures(&workspace::root(), Duration::from_secs(300))
            }
            _ => bail!("usage: cargo xtask bench [fastpath|smp|boot|xl|net|net rust|dm]"),
        },
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{HELP}"),
    }
}

/// The hostile domain's run (`xenolith_images::hostile`): its summary line, or its error with
/// the seed to replay it.
fn hostile_run(calls: u64, seed: u64, only: Option<&str>) -> Result<()> {
    let outcome = hostile::run(calls, seed, only).with_context(|| {
        format!("the hostile run failed (replay: cargo xtask soak --calls {calls} --seed {seed})")
    })?;
    println!("xtask: {}", outcome.summary());
    Ok(())
}

/// `soak [--calls N] [--seed S] [--only A+B]`: 10,000,000 calls and a fresh seed unless given;
/// `--only` limits the calls to those hypercall numbers.
fn soak_options(args: &[String]) -> Result<(u64, u64, Option<String>)> {
    let (mut calls, mut seed, mut only) = (10_000_000, hostile::fresh_seed(), None);
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = iter.next().with_context(|| format!("{arg} needs a value"))?;
        if arg == "--only" {
            ensure!(
                value.split('+').all(|n| n.parse::<u8>().is_ok_and(|n| n < 64)),
                "--only {value:?}: hypercall numbers 0-63 joined with +"
            );
            only = Some(value.clone());
            continue;
        }
        let number: u64 =
            value.parse().with_context(|| format!("{arg} {value:?} is not a whole number"))?;
        match arg.as_str() {
            "--calls" => calls = number,
            "--seed" => seed = number,
            other => bail!("unknown soak option {other:?} (--calls N, --seed S, --only A+B)"),
        }
    }
    Ok((calls, seed, only))
}

/// Seconds the test command fuzzes the xenstore wire parser and store.
const XENSTORE_FUZZ_SECONDS: u64 = 60;
/// Seconds the test command fuzzes the device model's records, registers and rings.
const DEVICE_MODEL_FUZZ_SECONDS: u64 = 30;

/// The service logic's bounded fuzzing runs (xenstore, then the device model) and the xenstore
/// logic's tests under Miri (part of `test`).
fn xenstore_checks() -> Result<()> {
    let root = workspace::root();
    println!("xtask: {}", xenstore_checks::fuzz_xenstore(&root, XENSTORE_FUZZ_SECONDS)?);
    let device_model = xenstore_checks::fuzz_device_model(&root, DEVICE_MODEL_FUZZ_SECONDS)?;
    println!("xtask: {device_model}");
    println!("xtask: {}", xenstore_checks::miri_xenstore(&root)?);
    Ok(())
}

fn default_manifest() -> PathBuf {
    workspace::root().join("images").join("default.toml")
}

/// Splits `[MANIFEST] [--append ARGS]`.
fn manifest_and_append(args: &[String]) -> Result<(PathBuf, String)> {
    let mut manifest = None;
    let mut append = String::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--append" => append = iter.next().context("--append needs a value")?.clone(),
            flag if flag.starts_with('-') => bail!("unknown option {flag:?}\n\n{HELP}"),
            path if manifest.is_none() => manifest = Some(PathBuf::from(path)),
            extra => bail!("unexpected argument {extra:?}\n\n{HELP}"),
        }
    }
    Ok((manifest.unwrap_or_else(default_manifest), append))
}

fn run(args: &[String]) -> Result<()> {
    let (manifest, append) = manifest_and_append(args)?;
    qemu::ensure_installed()?;
    let image = workspace::build_system(&manifest, CoreOptions::default())?;
    let config = QemuConfig {
        cpus: image.manifest.qemu.cpus,
        memory_mib: image.manifest.qemu.memory_mib,
        kernel: image.kernel.clone(),
        bundle: Some(image.bundle.clone()),
        append,
        icount: false,
        interactive: true,
        cpu: qemu::DEFAULT_CPU,
        xl_socket: None,
    };
    let mut config = config;
    if qemu::wants_virtio_console(&image.manifest) {
        let socket = xl_client::default_socket();
        if let Some(directory) = socket.parent() {
            std::fs::create_dir_all(directory)
                .with_context(|| format!("creating {}", directory.display()))?;
        }
        eprintln!(
            "xtask: xl from another terminal: `cargo xtask xl list` (the control domain's virtio \
             console is on {})",
            socket.display()
        );
        config.xl_socket = Some(socket);
    }
    eprintln!(
        "xtask: booting {} ({} CPUs, {} MiB) in QEMU; press Ctrl-A then X to quit",
        manifest.display(),
        config.cpus,
        config.memory_mib
    );
    let status = config.command().status().context("starting QEMU")?;
    ensure!(status.success(), "QEMU exited with {status}");
    Ok(())
}

/// `xl [--timeout SECONDS] ARGS...`: the xl command in the running system's control domain;
/// prints xl's output and returns its exit status.
fn xl(args: &[String]) -> Result<u8> {
    let (timeout, args) = match args {
        [flag, seconds, rest @ ..] if flag == "--timeout" => {
            let seconds: u64 = seconds.parse().with_context(|| {
                format!("--timeout {seconds:?} is not a whole number of seconds")
            })?;
            (Duration::from_secs(seconds), rest)
        }
        _ => (xl_client::DEFAULT_TIMEOUT, args),
    };
    ensure!(!args.is_empty(), "usage: cargo xtask xl [--timeout SECONDS] ARGS... (e.g. `list`)");
    let line = xl_client::command_line(args)?;
    let answer = xl_client::request(&xl_client::default_socket(), &line, timeout)?;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(answer.text.as_bytes()).context("writing xl's output")?;
    stdout.flush().context("writing xl's output")?;
    Ok(answer.status)
}

fn build(args: &[String]) -> Result<()> {
    let (manifest, append) = manifest_and_append(args)?;
    ensure!(append.is_empty(), "--append is for `run`");
    let image = workspace::build_system(&manifest, CoreOptions::default())?;
    for path in [&image.kernel, &image.bundle] {
        let size = std::fs::metadata(path)?.len();
        println!("{} ({size} bytes)", path.display());
    }
    Ok(())
}

fn check(args: &[String]) -> Result<()> {
    ensure!(!args.is_empty(), "check needs at least one manifest");
    let mut failed = 0;
    for path in args {
        match Manifest::load(Path::new(path)) {
            Ok(manifest) => {
                for warning in &manifest.warnings {
                    eprintln!("{warning}");
                }
                println!("{path}: ok");
            }
            Err(error) => {
                eprintln!("{:#}", anyhow::Error::new(error));
                failed += 1;
            }
        }
    }
    ensure!(failed == 0, "{failed} of {} manifests are invalid", args.len());
    Ok(())
}

fn cargo_status(args: &[&str]) -> Result<()> {
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = workspace::cargo().args(args).status().context("running cargo")?;
    ensure!(status.success(), "`cargo {}` failed ({status})", args.join(" "));
    Ok(())
}

/// Runs `cargo test` with `args`, passing its output through, and closes with one summary line
/// that adds up every test binary's `test result:` line.
fn cargo_test(args: &[&str]) -> Result<()> {
    let mut all = vec!["test"];
    all.extend_from_slice(args);
    eprintln!("xtask: cargo {}", all.join(" "));
    let mut child = workspace::cargo()
        .args(&all)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let stdout = child.stdout.take().context("cargo test's stdout")?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        if let Some(result) = line.strip_prefix("test result: ") {
            passed += number_before(result, " passed").unwrap_or(0);
            failed += number_before(result, " failed").unwrap_or(0);
            ignored += number_before(result, " ignored").unwrap_or(0);
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!("summary: {passed} passed, {failed} failed, {ignored} skipped");
    ensure!(status.success(), "`cargo {}` failed ({status})", all.join(" "));
    Ok(())
}

/// The number just before `suffix` in `text` ("3 passed; 1 failed" -> 3 for " passed").
fn number_before(text: &str, suffix: &str) -> Option<u64> {
    let head = &text[..text.find(suffix)?];
    let digits = head.rsplit(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

fn lint() -> Result<()> {
    cargo_status(&["fmt", "--all", "--check"])?;
    cargo_status(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    let target_dir = workspace::root().join("target").join("clippy-bare-metal");
    let target_dir = target_dir.to_str().context("non-UTF-8 target directory")?;
    for features in [None, Some("xenolith-kernel/test-hooks")] {
        let mut args = vec!["clippy", "--package", "xenolith-kernel", "--package", "xenolith-abi"];
        args.extend(["--target", CORE_TARGET, "--target-dir", target_dir]);
        if let Some(features) = features {
            args.extend(["--features", features]);
        }
        args.extend(["--", "-D", "warnings"]);
        cargo_status(&args)?;
    }
    // Domains run with FP/SIMD (the core does not touch those registers), on the other target.
    let domains = [
        "clippy",
        "--package",
        "xenolith-runtime",
        "--package",
        "test-guest",
        "--package",
        "conformance-guest",
        "--package",
        "control",
        "--package",
        "xenstore-stub",
        "--package",
        "console",
        "--package",
        "netback",
        "--package",
        "device-model",
        "--package",
        "xenolith-builder",
        "--package",
        "xenolith-xlcfg",
        "--package",
        "xenolith-xl",
    ];
    let mut args = domains.to_vec();
    args.extend(["--target", DOMAIN_TARGET, "--target-dir", target_dir, "--", "-D", "warnings"]);
    cargo_status(&args)?;
    // The Linux guests' tools, for their target (clippy does not link: no linker flags needed).
    cargo_status(&[
        "clippy",
        "--package",
        guest_tools::XENSTORE_PACKAGE,
        "--target",
        guest_tools::TARGET,
        "--target-dir",
        target_dir,
        "--",
        "-D",
        "warnings",
    ])?;
    Ok(())
}

fn bench() -> Result<()> {
    qemu::ensure_installed()?;
    let image = workspace::build_system(&default_manifest(), CoreOptions::default())?;
    let image_size = std::fs::metadata(&image.kernel)?.len();
    let kernel_bytes = std::fs::read(&image.kernel)?;
    let footprint = u64::from_le_bytes(kernel_bytes[16..24].try_into()?);
    println!("figure: core Image file        {image_size} bytes");
    println!("figure: core in memory (+bss)  {footprint} bytes");
    println!("figure: boot bundle            {} bytes", std::fs::metadata(&image.bundle)?.len());
    let root = workspace::root();
    let files = code_lines::per_file(&root.join("kernel"))?;
    let total: usize = files.iter().map(|(_, lines)| lines).sum();
    println!(
        "figure: kernel/ code lines     {total} (compiled into the hypervisor: no tests, blank or \
         comment lines; goal at most {})",
        code_lines::MAX_CORE_LINES
    );
    for (path, lines) in files.iter().take(10) {
        let path = path.strip_prefix(&root).unwrap_or(path);
        println!("figure:   {lines:6} {}", path.display());
    }
    if let Ok(output) = Command::new("tokei").arg(root.join("kernel")).output() {
        println!("tokei kernel/:\n{}", String::from_utf8_lossy(&output.stdout));
    }
    boot_figures(&image)?;
    for cpus in [1, 2, 4] {
        let (instructions, _) = boot_to_ready(&image, cpus, true)?;
        let (_, wall) = boot_to_ready(&image, cpus, false)?;
        println!(
            "figure: boot to ready, -smp {cpus}: {instructions} instructions (-icount shift=0); {:.3} s wall (TCG, no icount)",
            wall.as_secs_f64()
        );
    }
    fastpath_figures(&root, Duration::from_secs(300))?;
    smp_figures(&root, Duration::from_secs(300))?;
    dm_figures(&root, Duration::from_secs(300))?;
    // Domains: a benchmark guest and a peer it yields to, on one pCPU.
    let bench =
        workspace::build_system(&root.join("tests/manifests/bench.toml"), CoreOptions::default())?;
    let mut running = Running::start(&icount_config(&bench, 1))?;
    let timeout = Duration::from_secs(300);
    let line = running.wait_for("bench null-hypercall", timeout).map_err(anyhow::Error::msg)?;
    let null = number_after(&line, "null-hypercall ")?;
    let line = running.wait_for("bench yield-round-trip", timeout).map_err(anyhow::Error::msg)?;
    let round_trip = number_after(&line, "yield-round-trip ")?;
    drop(running);
    println!("figure: null hypercall (xen_version) round trip: {null} instructions");
    println!("figure: yield round trip between two guests on one pCPU (2 hypercalls, 2 vCPU context switches): {round_trip} instructions");
    println!("figure: one vCPU context switch, derived ((round trip - 2 x null hypercall) / 2): {} instructions", round_trip.saturating_sub(2 * null) / 2);
    // Event channels and grant tables between two guests on one pCPU (markers from the test
    // guest's `events.rs` and `grants.rs`; under -icount shift=0 a nanosecond is an instruction).
    for (manifest, marker, figure) in [
        ("tests/manifests/bench-events.toml", "bench event-round-trip ", "event channel round trip between two guests on one pCPU (send, upcall, send back, upcall)"),
        ("tests/manifests/bench-grants.toml", "bench grant-copy ", "grant copy, per KiB (4 KiB segments, 1 MiB each way)"),
        ("tests/manifests/bench-grants.toml", "bench grant-map-unmap ", "grant map + unmap of one page (two hypercalls)"),
    ] {
        let system = workspace::build_system(&root.join(manifest), CoreOptions::default())?;
        let mut running = Running::start(&icount_config(&system, 1))?;
        let line = running.wait_for(marker.trim_end(), timeout).map_err(anyhow::Error::msg)?;
        println!("figure: {figure}: {} instructions", number_after(&line, marker)?);
    }
    // xenstore: a guest's READ round trip through the xenstore-stub domain.
    let system = workspace::build_system(
        &root.join("tests/manifests/bench-xenstore.toml"),
        CoreOptions::default(),
    )?;
    let mut running = Running::start(&icount_config(&system, 1))?;
    let line = running.wait_for("BENCH xs-read-roundtrip", timeout).map_err(anyhow::Error::msg)?;
    println!(
        "figure: xenstore READ round trip from a guest through the xenstore-stub domain (one pCPU): {} instructions",
        number_after(&line, "instructions=")?
    );
    drop(running);
    // xenstore restart: kill-to-serving downtime, as the killer guest measures it (virtual time;
    // under -icount shift=0 a nanosecond is an instruction).
    let system = workspace::build_system(
        &root.join("tests/manifests/xenstore-torture.toml"),
        CoreOptions::default(),
    )?;
    let mut running = Running::start(&icount_config(&system, 1))?;
    let mut downtimes = Vec::new();
    for kill in 1..=10 {
        let line = running
            .wait_for(&format!("xs-killer: kill {kill} "), timeout)
            .map_err(anyhow::Error::msg)?;
        downtimes.push(number_after(&line, "downtime_ns=")?);
    }
    drop(running);
    downtimes.sort_unstable();
    println!(
        "figure: xenstore-stub kill-to-serving downtime over 10 kills (instructions): min {}, median {}, max {}",
        downtimes[0], downtimes[5], downtimes[9]
    );
    // The console domain: a guest's 80-byte lines through its ring to the UART, and the
    // kill-to-serving downtime over ten kills (the killer's and the restarted domain's virtual
    // times; the test's own `ping` is typed after each restart, as in tests/tests/console.rs).
    let system = workspace::build_system(
        &root.join("tests/manifests/bench-console.toml"),
        CoreOptions::default(),
    )?;
    let mut running = Running::start(&icount_config(&system, 1))?;
    let line = running.wait_for("bench console-line", timeout).map_err(anyhow::Error::msg)?;
    println!(
        "figure: console line (80 bytes) from a guest's ring to the UART through the console domain (one pCPU): {} instructions",
        number_after(&line, "console-line ")?
    );
    drop(running);
    let system = workspace::build_system(
        &root.join("tests/manifests/console-kill.toml"),
        CoreOptions::default(),
    )?;
    let mut running = Running::start(&icount_config(&system, 1))?;
    let mut downtimes = Vec::new();
    for kill in 1..=10 {
        let markers = [format!("killer: kill {kill} at "), format!("(restart {kill}, at ")];
        let markers: Vec<&str> = markers.iter().map(String::as_str).collect();
        let lines = running.wait_for_all(&markers, timeout).map_err(anyhow::Error::msg)?;
        let killed = number_after(&lines[0], " at ")?;
        let serving = number_after(&lines[1], ", at ")?;
        downtimes.push(serving.saturating_sub(killed));
        running.type_input(format!("ping {kill}\n").as_bytes())?;
    }
    drop(running);
    downtimes.sort_unstable();
    println!(
        "figure: console domain kill-to-serving downtime over 10 kills (instructions): min {}, median {}, max {}",
        downtimes[0], downtimes[5], downtimes[9]
    );
    // Debian's Linux to its /init marker, as a domU and bare. Both print the marker through the
    // kernel log (no console device: `console=hvc0` has no hvc0 on either), so its printk time
    // is Linux's clock from its timer's start to /init: instructions, under -icount shift=0.
    let (domu, bare) = linux_boot_figures(&root, timeout)?;
    println!(
        "figure: Debian Linux boot to /init (printk clock, from time_init): domU {domu} \
         instructions, bare {bare} instructions, ratio {:.3}",
        domu as f64 / bare.max(1) as f64
    );
    // The xenstore logic on the host.
    let status = Command::new(env!("CARGO"))
        .args(["run", "--release", "--quiet", "-p", "xenolith-xenstore", "--example", "bench"])
        .status()?;
    ensure!(status.success(), "the xenstore host benchmark failed");
    // The control domain building a guest: from its first domctl to the guest's first instruction.
    let builder = workspace::build_system(
        &root.join("tests/manifests/builder.toml"),
        CoreOptions::default(),
    )?;
    let mut running = Running::start(&icount_config(&builder, 1))?;
    let frequency = number_after(
        &running.wait_for("counter at", timeout).map_err(anyhow::Error::msg)?,
        "counter at ",
    )?;
    let start = number_after(
        &running.wait_for("control: building", timeout).map_err(anyhow::Error::msg)?,
        "at counter ",
    )?;
    let first = number_after(
        &running.wait_for("child: first instruction", timeout).map_err(anyhow::Error::msg)?,
        "at counter ",
    )?;
    let instructions = (first.saturating_sub(start)) * 1_000_000_000 / frequency.max(1);
    println!("figure: domain creation by the control domain (16 MiB, image from the bundle) to the guest's first instruction: {instructions} instructions");
    drop(running);
    xl_figures(&root, timeout)?;
    bench_net::figures(&root, timeout)
}

/// Issue 16's figures (`tests/manifests/bench-xl.toml`, one pCPU, `-icount shift=0`): `xl create`
/// of a 64 MiB guest to its first instruction, and the control domain's kill-to-serving
/// downtime (an injected crash to its next `xl ready`), over its create/destroy loop.
fn xl_figures(root: &std::path::Path, timeout: Duration) -> Result<()> {
    let system = workspace::build_system(
        &root.join("tests/manifests/bench-xl.toml"),
        CoreOptions::default(),
    )?;
    let mut running = Running::start(&icount_config(&system, 1))?;
    let frequency = number_after(
        &running.wait_for("counter at", timeout).map_err(anyhow::Error::msg)?,
        "counter at ",
    )?;
    let ns = |ticks: u64| ticks * 1_000_000_000 / frequency.max(1);
    let (mut creations, mut downtimes) = (Vec::new(), Vec::new());
    let (mut create_at, mut crashed_at) = (None, None);
    loop {
        let line = match running.next_line(timeout).map_err(anyhow::Error::msg)? {
            Some(line) => line,
            None => bail!("bench xl: no `loop done` within {timeout:?}"),
        };
        if line.contains("xl create at counter ") {
            create_at = Some(number_after(&line, "at counter ")?);
        } else if line.contains("big: first instruction at counter ") {
            let first = number_after(&line, "at counter ")?;
            creations.extend(create_at.take().map(|start| ns(first.saturating_sub(start))));
        } else if line.contains("crash injected at counter ") {
            crashed_at = Some(number_after(&line, "at counter ")?);
        } else if line.contains("control: xl ready") {
            let ready = number_after(&line, "at counter ")?;
            downtimes.extend(crashed_at.take().map(|crash| ns(ready.saturating_sub(crash))));
            create_at = None;
        } else if line.contains("control: loop done") {
            break;
        }
    }
    for (what, values) in [
        ("`xl create` of a 64 MiB guest to its first instruction", &mut creations),
        ("control domain kill-to-serving downtime", &mut downtimes),
    ] {
        ensure!(!values.is_empty(), "bench xl: no {what} measured");
        values.sort_unstable();
        let (count, median) = (values.len(), values[values.len() / 2]);
        println!(
            "figure: {what} over {count} (instructions): min {}, median {median}, max {}",
            values[0],
            values[count - 1]
        );
    }
    Ok(())
}

/// Issue 15's table: one guest's fast paths on one pCPU (`tests/manifests/bench-fastpath.toml`,
/// the test guest's `fastpath.rs`), on the CPU the table was measured on, with Xen 4.17's
/// figures beside ours (`docs/performance.md`).
fn fastpath_figures(root: &std::path::Path, timeout: Duration) -> Result<()> {
    let system = workspace::build_system(
        &root.join("tests/manifests/bench-fastpath.toml"),
        CoreOptions::default(),
    )?;
    let mut config = icount_config(&system, 1);
    config.cpu = FASTPATH_CPU;
    let on_xen = fastpath_on_xen(root, timeout)?;
    let mut running = Running::start(&config)?;
    let ours = fastpath_rows(&mut running, timeout)?;
    for (((_, what, filed, goal), xen), ours) in FASTPATH_ROWS.into_iter().zip(on_xen).zip(ours) {
        let verdict = if ours <= goal { "met" } else { "NOT met" };
        println!(
            "figure: fast path, {what}: {ours} instructions (Xen 4.17 here: {xen}, as filed: \
             {filed}; goal at most {goal}: {verdict})"
        );
    }
    running.wait_for("PASS fastpath", timeout).map_err(anyhow::Error::msg)?;
    Ok(())
}

/// The same fast-path program as a dom0less domU of Debian's Xen 4.17 on the same QEMU (one
/// pCPU, `-icount shift=0`): its five rows, in order.
fn fastpath_on_xen(root: &Path, timeout: Duration) -> Result<Vec<u64>> {
    use xenolith_images::xen::{self, DomU, XenSystem};
    let work = root.join("target/bench-xen");
    std::fs::create_dir_all(&work)?;
    let elf = std::fs::read(workspace::build_program("test-guest")?)?;
    let image = work.join("test-guest.img");
    std::fs::write(&image, workspace::elf_to_image(&elf)?)?;
    let system = XenSystem {
        xen: xen::fetch()?,
        cpu: FASTPATH_CPU,
        cpus: 1,
        memory_mib: 1024,
        domus: vec![DomU {
            name: "domU1".into(),
            image,
            memory_kib: 16 * 1024,
            vcpus: 1,
            bootargs: "name=fast test=fastpath rounds=10000".into(),
        }],
    };
    let mut command = system.command(&work)?;
    command.args(["-icount", "shift=0"]);
    fastpath_rows(&mut Running::spawn(command)?, timeout)
}

/// Issue 15's rows: (the guest's name for it, what it measures, Xen 4.17's instructions as
/// filed, the goal).
const FASTPATH_ROWS: [(&str, &str, u64, u64); 5] = [
    ("null", "null hypercall (xen_version)", 422, 211),
    ("send", "EVTCHNOP_send to a loopback port, event left pending", 871, 435),
    ("send-upcall", "the same with the upcall delivered, handled and EOI'd", 1541, 770),
    ("copy", "GNTTABOP_copy, 4 KiB from a self-grant to a frame", 3563, 1780),
    ("map-unmap", "GNTTABOP_map_grant_ref + unmap_grant_ref of one page", 5119, 2560),
];

/// The fast-path guest's figure for each of [`FASTPATH_ROWS`], in order, as it prints them
/// (`bench fastpath ROW INSTRUCTIONS`).
fn fastpath_rows(running: &mut Running, timeout: Duration) -> Result<Vec<u64>> {
    let mut figures = Vec::new();
    for (row, ..) in FASTPATH_ROWS {
        let marker = format!("bench fastpath {row} ");
        let line = running.wait_for(&marker, timeout).map_err(anyhow::Error::msg)?;
        figures.push(number_after(&line, &marker)?);
    }
    Ok(figures)
}

/// SMP scaling: 1, 2 and 4 guests, each pinned to its own pCPU, making null hypercalls and
/// loopback event sends from the same virtual time on (`tests/manifests/bench-smp<N>.toml`).
/// Under `-icount` QEMU runs the CPUs in turn and virtual time counts the instructions of all of
/// them, so operations per million instructions stay flat as guests are added when nothing
/// serialises them (each pCPU's own rate is that times N), and fall where pCPUs wait for each
/// other.
fn smp_figures(root: &std::path::Path, timeout: Duration) -> Result<()> {
    let mut single = 0.0;
    for guests in [1u32, 2, 4] {
        let manifest = root.join(format!("tests/manifests/bench-smp{guests}.toml"));
        let system = workspace::build_system(&manifest, CoreOptions::default())?;
        let mut running = Running::start(&icount_config(&system, guests))?;
        let markers: Vec<String> = (0..guests).map(|k| format!("smp{k}: bench smp ")).collect();
        let markers: Vec<&str> = markers.iter().map(String::as_str).collect();
        let lines = running.wait_for_all(&markers, timeout).map_err(anyhow::Error::msg)?;
        drop(running);
        let mut ops = 0;
        let (mut from, mut last_start, mut to) = (u64::MAX, 0, 0);
        for line in &lines {
            ops += number_after(line, "ops=")?;
            let start = number_after(line, "from=")?;
            (from, last_start) = (from.min(start), last_start.max(start));
            to = to.max(number_after(line, "to=")?);
        }
        let skew = last_start - from;
        let aggregate = ops as f64 * 1e6 / to.saturating_sub(from).max(1) as f64;
        if guests == 1 {
            single = aggregate;
        }
        println!(
            "figure: SMP scaling, {guests} guest(s) on {guests} pCPU(s) (null hypercall + loopback \
             send): {aggregate:.0} operations per million instructions of all pCPUs, {:.0} per \
             pCPU's million; {:.2}x one guest's rate (start skew {skew} ns)",
            aggregate * f64::from(guests),
            aggregate * f64::from(guests) / single.max(1.0)
        );
    }
    Ok(())
}

/// The CPU issue 15's table was measured on.
const FASTPATH_CPU: &str = "cortex-a57";

/// Device models (issue 18): a guest's MMIO register read served by a device model domain
/// through the core's IOREQ server, on one pCPU under `-icount shift=0` (the guest's virtual
/// nanoseconds per read are instructions). Xen's figure for the same path is not measurable
/// here: Debian's Xen 4.17 is built without `CONFIG_IOREQ_SERVER`.
fn dm_figures(root: &std::path::Path, timeout: Duration) -> Result<()> {
    let manifest = root.join("tests/manifests/bench-ioreq.toml");
    let system = workspace::build_system(&manifest, CoreOptions::default())?;
    let mut running = Running::start(&icount_config(&system, 1))?;
    let line = running.wait_for("bench ioreq-round-trip", timeout).map_err(anyhow::Error::msg)?;
    println!(
        "figure: MMIO register read served by a device model domain (trap, ioreq, event to the \
         model, its answer, event back, completion; one pCPU): {} instructions",
        number_after(&line, "ioreq-round-trip ")?
    );
    drop(running);
    let manifest = root.join("tests/manifests/bench-blk.toml");
    let system = workspace::build_system(&manifest, CoreOptions::default())?;
    let mut running = Running::start(&icount_config(&system, 1))?;
    let line = running.wait_for("bench blk-read", timeout).map_err(anyhow::Error::msg)?;
    let (bytes, instructions) = (number_after(&line, "bytes=")?, number_after(&line, "ns=")?);
    println!(
        "figure: virtio-blk sequential read through the device model (64 KiB requests, one \
         pCPU): {} bytes per million instructions ({bytes} bytes in {instructions} instructions)",
        bytes * 1_000_000 / instructions.max(1)
    );
    Ok(())
}

fn icount_config(image: &workspace::SystemImage, cpus: u32) -> QemuConfig {
    QemuConfig {
        cpus,
        memory_mib: 1024,
        kernel: image.kernel.clone(),
        bundle: Some(image.bundle.clone()),
        append: String::new(),
        icount: true,
        interactive: false,
        cpu: qemu::DEFAULT_CPU,
        xl_socket: None,
    }
}

/// Boots `image` and returns (virtual nanoseconds to "ready", wall time to "ready"). Under
/// `-icount shift=0` a virtual nanosecond is one instruction.
/// Linux's printk time (nanoseconds) at its /init marker: as a domU of the core
/// (`tests/manifests/bench-linux.toml`), and bare on the same QEMU with the same kernel and
/// initramfs (EL1, `-cpu max`, 256 MiB, one CPU).
fn linux_boot_figures(root: &std::path::Path, timeout: Duration) -> Result<(u64, u64)> {
    let system = workspace::build_system(
        &root.join("tests/manifests/bench-linux.toml"),
        CoreOptions::default(),
    )?;
    let mut running = Running::start(&icount_config(&system, 1))?;
    let domu =
        printk_ns(&running.wait_for("XENOLITH-INIT-DONE", timeout).map_err(anyhow::Error::msg)?)?;
    drop(running);
    let packages = debian::fetch()?;
    let directory = root.join("target/images/bench-linux-bare");
    std::fs::create_dir_all(&directory)?;
    let kernel = directory.join("Image");
    let initrd = directory.join("initramfs.cpio");
    std::fs::write(&kernel, debian::kernel_image(&packages)?)?;
    std::fs::write(&initrd, debian::initramfs(&packages, &guest_tools::build()?)?)?;
    let mut command = Command::new(qemu::QEMU_AARCH64);
    command.args([
        "-M",
        "virt,gic-version=3",
        "-cpu",
        qemu::DEFAULT_CPU,
        "-smp",
        "1",
        "-m",
        "256M",
    ]);
    command
        .args(["-icount", "shift=0", "-display", "none", "-monitor", "none", "-serial", "stdio"]);
    command.arg("-kernel").arg(&kernel).arg("-initrd").arg(&initrd).arg("-no-reboot");
    command.args([
        "-append",
        "console=hvc0 earlycon=pl011,0x9000000 printk.devkmsg=on xenolith.cpus=1",
    ]);
    let mut running = Running::spawn(command)?;
    let bare =
        printk_ns(&running.wait_for("XENOLITH-INIT-DONE", timeout).map_err(anyhow::Error::msg)?)?;
    Ok((domu, bare))
}

/// The printk time of a Linux log line (`[   12.345678] ...`), in nanoseconds.
fn printk_ns(line: &str) -> Result<u64> {
    let stamp = line
        .split('[')
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .with_context(|| format!("no printk time in {line:?}"))?;
    let (seconds, micros) =
        stamp.trim().split_once('.').with_context(|| format!("no printk time in {line:?}"))?;
    Ok(seconds.parse::<u64>()? * 1_000_000_000 + micros.parse::<u64>()? * 1_000)
}

fn boot_to_ready(
    image: &workspace::SystemImage,
    cpus: u32,
    icount: bool,
) -> Result<(u64, Duration)> {
    let config = QemuConfig {
        cpus,
        memory_mib: 1024,
        kernel: image.kernel.clone(),
        bundle: Some(image.bundle.clone()),
        append: String::new(),
        icount,
        interactive: false,
        cpu: qemu::DEFAULT_CPU,
        xl_socket: None,
    };
    let wall = Instant::now();
    let mut running = Running::start(&config)?;
    let timeout = Duration::from_secs(120);
    let frequency_line = running.wait_for("counter at", timeout).map_err(anyhow::Error::msg)?;
    let frequency: u64 = number_after(&frequency_line, "counter at ")?;
    let ready = running.wait_for("Xenolith ready", timeout).map_err(anyhow::Error::msg)?;
    let wall = wall.elapsed();
    let counter: u64 = number_after(&ready, "(counter ")?;
    Ok((counter * 1_000_000_000 / frequency.max(1), wall))
}

/// The default system from the core's banner to every boot domain running, on 1, 2 and 4 pCPUs.
fn boot_figures(image: &workspace::SystemImage) -> Result<()> {
    let manifest = Manifest::load(&default_manifest())?;
    let boot_domains = manifest.domains.iter().filter(|domain| domain.boot).count();
    for cpus in [1, 2, 4] {
        let (banner, running) = boot_to_domains(image, cpus, boot_domains)?;
        println!(
            "figure: boot, -smp {cpus}: core banner to all {boot_domains} boot domains running \
             (each one's first instruction): {} instructions (-icount shift=0)",
            running.saturating_sub(banner)
        );
    }
    Ok(())
}

/// Boots `image` under `-icount shift=0` and returns the virtual nanoseconds (instructions) at
/// the core's banner (its first log line's time, printed right after it) and at the latest first
/// instruction of `domains` boot domains (each prints `first instruction at counter N` first).
fn boot_to_domains(
    image: &workspace::SystemImage,
    cpus: u32,
    domains: usize,
) -> Result<(u64, u64)> {
    let mut running = Running::start(&icount_config(image, cpus))?;
    let timeout = Duration::from_secs(120);
    let first = running.wait_for("counter at", timeout).map_err(anyhow::Error::msg)?;
    let frequency: u64 = number_after(&first, "counter at ")?;
    // `[    0.011427] (cpu0) INFO  booted at EL2 ...`: seconds with six decimals.
    let stamp: String =
        first.split(']').next().unwrap_or("").chars().filter(char::is_ascii_digit).collect();
    let banner = stamp.parse::<u64>().with_context(|| format!("no time in {first:?}"))? * 1000;
    let markers = vec!["first instruction at counter "; domains];
    let lines = running.wait_for_all(&markers, timeout).map_err(anyhow::Error::msg)?;
    let mut last = 0;
    for line in &lines {
        last = last.max(number_after(line, "first instruction at counter ")?);
    }
    Ok((banner, last * 1_000_000_000 / frequency.max(1)))
}

fn number_after(line: &str, prefix: &str) -> Result<u64> {
    let rest = line.split(prefix).nth(1).with_context(|| format!("no {prefix:?} in {line:?}"))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().with_context(|| format!("no number after {prefix:?} in {line:?}"))
}
