//! QEMU: making sure it is installed, and the command line that boots a system image.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use xenolith_abi::bundle::Capability;

use crate::hardware;
use crate::manifest::Manifest;

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
    /// A virtio console on this unix socket (QEMU listens), for a manifest that passes one
    /// through ([`wants_virtio_console`]): what `cargo xtask xl` talks to.
    pub xl_socket: Option<PathBuf>,
}

/// Whether a domain of `manifest` holds `hardware:virtio-console`
/// ([`hardware::VIRTIO_CONSOLE`]): QEMU must then run the device ([`QemuConfig::xl_socket`]).
pub fn wants_virtio_console(manifest: &Manifest) -> bool {
    let device = hardware::VIRTIO_CONSOLE.name;
    manifest.domains.iter().any(|domain| {
        domain.capabilities().any(|capability| capability == Capability::Hardware { device })
    })
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
        if let Some(socket) = &self.xl_socket {
            // The first virtio device on the command line gets QEMU virt's highest virtio-mmio
            // transport (hw/arm/virt.c `create_virtio_devices`: transport 31 at 0x0a003e00, SPI
            // 47 = INTID 79), the one the manifest passes through. Modern (version 2)
            // registers; `max_ports=1`: the device offers no multiport, and `virtconsole`
            // (QEMU 7.2 `info qtree`: `nr = 0`) is port 0, the one a driver without multiport
            // uses. Commas in the path are doubled, as QEMU's option syntax wants.
            let path = socket.display().to_string().replace(',', ",,");
            command.args(["-global", "virtio-mmio.force-legacy=false"]);
            command.args(["-device", "virtio-serial-device,max_ports=1"]);
            command.arg("-chardev").arg(format!("socket,id=xl,path={path},server=on,wait=off"));
            command.args(["-device", "virtconsole,chardev=xl"]);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(xl_socket: Option<PathBuf>) -> QemuConfig {
        QemuConfig {
            cpus: 2,
            memory_mib: 1024,
            kernel: "Image".into(),
            bundle: None,
            append: String::new(),
            icount: false,
            interactive: false,
            cpu: DEFAULT_CPU,
            xl_socket,
        }
    }

    fn words(config: &QemuConfig) -> Vec<String> {
        config.command().get_args().map(|arg| arg.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn manifests_passing_the_virtio_console_through_get_it() {
        let root = crate::workspace::root();
        for (manifest, wanted) in [
            ("images/default.toml", true),
            ("images/linux.toml", true),
            ("tests/manifests/xl-host.toml", true),
            ("tests/manifests/xl.toml", false),
        ] {
            let manifest_path = root.join(manifest);
            let loaded = Manifest::load(&manifest_path).unwrap();
            assert_eq!(wants_virtio_console(&loaded), wanted, "{manifest}");
        }
    }

    #[test]
    fn the_virtio_console_is_the_first_virtio_device_on_a_socket() {
        let args = words(&config(Some("/tmp/a,b/xl.sock".into())));
        let devices: Vec<&String> = args
            .iter()
            .zip(&args[1..])
            .filter(|(flag, _)| *flag == "-device")
            .map(|(_, d)| d)
            .collect();
        assert_eq!(devices, ["virtio-serial-device,max_ports=1", "virtconsole,chardev=xl"]);
        assert!(args.contains(&"virtio-mmio.force-legacy=false".to_string()));
        assert!(
            args.contains(&"socket,id=xl,path=/tmp/a,,b/xl.sock,server=on,wait=off".to_string())
        );
        assert!(!words(&config(None)).iter().any(|arg| arg.contains("virtio")));
    }
}
