//! `cargo xtask conformance`: the conformance guest on Xen 4.17 and on Xenolith, compared
//! (`docs/conformance.md`; the logic is `xenolith_images::conformance`).

use std::path::Path;

use anyhow::{ensure, Context, Result};
use xenolith_images::conformance;
use xenolith_images::qemu::QemuConfig;
use xenolith_images::runner::Running;
use xenolith_images::workspace::{self, CoreOptions};
use xenolith_images::xen::{self, DomU, XenSystem};

/// The guest's crate.
const GUEST: &str = "conformance-guest";
/// Both hypervisors run on this QEMU CPU model and CPU count.
const CPU: &str = "cortex-a57";
const CPUS: u32 = 2;
/// The prober's and the peer's RAM.
const GUEST_MIB: u64 = 64;
/// Where the documented deviations are, from the repository root.
const DEVIATIONS: &str = "tests/conformance/deviations.toml";

/// Builds the guest, runs it on both hypervisors, writes the listings and the report under
/// `target/conformance/`, prints the summary, and fails on any undocumented difference or stale
/// deviation.
pub fn run() -> Result<()> {
    let root = workspace::root();
    let work = root.join("target").join("conformance");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let deviations = conformance::read_deviations(&root.join(DEVIATIONS))?;

    let elf_path = workspace::build_program(GUEST)?;
    let elf =
        std::fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
    let image = workspace::elf_to_image(&elf)
        .with_context(|| format!("making an arm64 Image of {}", elf_path.display()))?;
    let guest = work.join("guest.img");
    std::fs::write(&guest, image).with_context(|| format!("writing {}", guest.display()))?;

    let xen_binary = xen::fetch()?;
    let log = |line: &str| println!("xtask: conformance: {line}");
    println!("xtask: conformance: the guest on Xen 4.17 ({})", xen_binary.display());
    let on_xen = conformance::collect(
        |from| boot_xen(&xen_binary, &guest, &work.join("xen"), from),
        |_| false,
        log,
    )
    .context("running the conformance guest on Xen")?;
    println!("xtask: conformance: the guest on Xenolith");
    let on_xenolith = conformance::collect(
        |from| boot_xenolith(&guest, &work.join("xenolith"), from),
        |line| {
            line.contains("domain 1 (prober) shut down")
                || line.contains("domain 1: ") && line.contains("crashing it")
        },
        log,
    )
    .context("running the conformance guest on Xenolith")?;

    let report = conformance::compare(&on_xen, &on_xenolith, &deviations)?;
    for (name, run) in [("xen", &on_xen), ("xenolith", &on_xenolith)] {
        write(&work.join(format!("{name}.txt")), &conformance::listing(run))?;
    }
    write(&work.join("report.txt"), &report.details())?;
    for difference in report.undocumented() {
        println!(
            "xtask: conformance: undocumented: #{} {}: Xen {:?}, Xenolith {:?}",
            difference.index,
            difference.name,
            difference.xen.compared(),
            difference.xenolith.compared()
        );
    }
    for line in &report.stale {
        println!("xtask: conformance: {DEVIATIONS}:{line}: this deviation matches no difference any more; remove it");
    }
    println!(
        "xtask: {} ({} boots on Xen, {} on Xenolith; details in {})",
        report.summary(),
        on_xen.boots,
        on_xenolith.boots,
        work.join("report.txt").display()
    );
    ensure!(
        report.undocumented().count() == 0 && report.stale.is_empty(),
        "the conformance suite found {} undocumented differences and {} stale deviations",
        report.undocumented().count(),
        report.stale.len()
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The prober's command line from probe `from` on.
fn prober_args(from: usize) -> String {
    format!("xc.role=prober xc.from={from}")
}

/// Xen with the prober (d1, 2 vCPUs) and the peer (d2).
fn boot_xen(xen: &Path, guest: &Path, work: &Path, from: usize) -> Result<Running> {
    let domu = |name: &str, vcpus, bootargs: String| DomU {
        name: name.into(),
        image: guest.to_path_buf(),
        memory_kib: GUEST_MIB * 1024,
        vcpus,
        bootargs,
    };
    let system = XenSystem {
        xen: xen.to_path_buf(),
        cpu: CPU,
        cpus: CPUS,
        memory_mib: 2048,
        domus: vec![domu("domU1", 2, prober_args(from)), domu("domU2", 1, "xc.role=peer".into())],
    };
    Running::spawn(system.command(work)?)
}

/// Xenolith with the idle domain (d0), the prober (d1) and the peer (d2), all the same `Image`.
fn boot_xenolith(guest: &Path, work: &Path, from: usize) -> Result<Running> {
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let manifest = work.join("conformance.toml");
    let image = guest.display();
    let text = format!(
        "# Written by `cargo xtask conformance` (docs/conformance.md).\n\
         [system]\nname = \"conformance\"\n\n\
         [hypervisor]\ncmdline = \"loglvl=info\"\n\n\
         [[domain]]\nname = \"idle\"\nkernel = \"{image}\"\nmemory = 16\ncmdline = \"xc.role=idle\"\n\n\
         [[domain]]\nname = \"prober\"\nkernel = \"{image}\"\nmemory = {GUEST_MIB}\nvcpus = 2\ncmdline = \"{}\"\n\n\
         [[domain]]\nname = \"peer\"\nkernel = \"{image}\"\nmemory = {GUEST_MIB}\ncmdline = \"xc.role=peer\"\n",
        prober_args(from)
    );
    write(&manifest, &text)?;
    let system = workspace::build_system(&manifest, CoreOptions::default())?;
    let config = QemuConfig {
        cpus: CPUS,
        memory_mib: 1024,
        kernel: system.kernel.clone(),
        bundle: Some(system.bundle.clone()),
        append: String::new(),
        icount: false,
        interactive: false,
        cpu: CPU,
        xl_socket: None,
    };
    Running::start(&config)
}
