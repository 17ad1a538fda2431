//! QEMU: making sure it is installed, and the command line that boots a system image.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The emulator for the aarch64 core.
pub const QEMU_AARCH64: &str = "qemu-system-aarch64";
/// The Debian packages that provide QEMU for both architectures.
pub const QEMU_PACKAGES: [&str; 2] = ["qemu-system-arm", "qemu-system-x86"];

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Makes sure QEMU is installed: installs it with apt-get when running as root on Debian, else
/// stops with the exact command to run.
pub fn ensure_installed() -> Result<()> {
    if on_path(QEMU_AARCH64) {
        return Ok(());
    }
    let install = format!("apt-get install -y --no-install-recommends {}", QEMU_PACKAGES.join(" "));
    let is_root =
        Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if !is_root || !on_path("apt-get") {
        bail!("{QEMU_AARCH64} is not installed; install it with: sudo apt-get update && sudo {install}");
    }
    eprintln!("xtask: {QEMU_AARCH64} not found; installing {}", QEMU_PACKAGES.join(" "));
    let run = |args: &str| -> Result<()> {
        let status = Command::new("sh")
            .args(["-c", args])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("running `{args}`"))?;
        if !status.success() {
            bail!("`{args}` failed ({status}); run it by hand and try again");
        }
        Ok(())
    };
    run("apt-get update -qq")?;
    run(&install)?;
    if !on_path(QEMU_AARCH64) {
        bail!("{QEMU_AARCH64} still not found after `{install}`");
    }
    Ok(())
}

/// How to run one QEMU.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// Virtual CPUs (`-smp`).
    pub cpus: u32,
    /// RAM in MiB (`-m`).
    pub memory_mib: u64,
    /// The core's `Image`.
    pub kernel: PathBuf,
    /// The boot bundle, loaded as the initrd.
    pub bundle: Option<PathBuf>,
    /// Extra hypervisor command line, put in `/chosen/bootargs` (applied after the bundle's).
    pub append: String,
    /// Deterministic instruction counting (`-icount shift=0`: one instruction per virtual ns).
    pub icount: bool,
    /// Serial and QEMU monitor on the terminal (Ctrl-A X quits); otherwise serial only, on stdout.
    pub interactive: bool,
    /// The CPU model (`-cpu`); [`DEFAULT_CPU`] unless a test asks for another.
    pub cpu: &'static str,
}

/// The CPU model QEMU emulates by default: every feature QEMU 7.2 has (SVE, SME, MTE, pointer
/// authentication with its cheap implementation-defined algorithm). `cortex-a57` is the other
/// model the tests use: an Armv8.0 CPU with none of them.
pub const DEFAULT_CPU: &str = "max,pauth-impdef=on";

impl QemuConfig {
    /// The QEMU command.
    pub fn command(&self) -> Command {
        let mut command = Command::new(QEMU_AARCH64);
        command.args(["-M", "virt,gic-version=3,virtualization=on", "-cpu", self.cpu]);
        command.arg("-smp").arg(self.cpus.to_string());
        command.arg("-m").arg(format!("{}M", self.memory_mib));
        command.arg("-kernel").arg(&self.kernel);
        if let Some(bundle) = &self.bundle {
            command.arg("-initrd").arg(bundle);
        }
        if !self.append.is_empty() {
            command.arg("-append").arg(&self.append);
        }
        if self.icount {
            command.args(["-icount", "shift=0"]);
        }
        if self.interactive {
            command.arg("-nographic");
        } else {
            command.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
        }
        command.arg("-no-reboot");
        command
    }
}
