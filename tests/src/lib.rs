//! The system-test harness: builds the test image once per test binary, boots it in QEMU and hands
//! back a supervised [`Running`] to wait on. Its forbidden patterns (`PANIC`, and what a test
//! adds with [`Running::forbid`]) are watched to the end of the test, not just to its last marker.
//!
//! The waiting, timeouts, serial tails on failure, the two-QEMU limit and killing QEMU on drop live
//! in `xenolith_images::runner`, shared with `cargo xtask bench`.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use xenolith_images::qemu::QemuConfig;
pub use xenolith_images::runner::{RunError, Running};
use xenolith_images::workspace::{self, CoreOptions, SystemImage};

/// How long a test keeps watching its forbidden patterns after its last marker (when its
/// `Running` is dropped, see [`Running::finish_on_drop`]); a test may call [`Running::finish`]
/// itself instead.
pub const FINAL_WATCH: Duration = Duration::from_secs(1);

/// How long any one marker may take to appear. Boots take about a second under TCG; the margin
/// covers a loaded CI machine.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The default system, built with the test hooks, once per process.
pub fn test_image() -> &'static SystemImage {
    image_for("images/default.toml")
}

/// The system described by `manifest` (relative to the repository root), built with the test
/// hooks, once per process and manifest.
pub fn image_for(manifest: &str) -> &'static SystemImage {
    static IMAGES: Mutex<BTreeMap<String, &'static SystemImage>> = Mutex::new(BTreeMap::new());
    let mut images = IMAGES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(image) = images.get(manifest) {
        return image;
    }
    let path = workspace::root().join(manifest);
    match workspace::build_system(&path, CoreOptions { test_hooks: true }) {
        Ok(image) => {
            let image: &'static SystemImage = Box::leak(Box::new(image));
            images.insert(manifest.to_string(), image);
            image
        }
        Err(error) => panic!("building the test image for {manifest} failed: {error:#}"),
    }
}

/// What to boot.
#[derive(Clone, Debug)]
pub struct Boot {
    /// `-smp`.
    pub cpus: u32,
    /// Extra hypervisor command line (`/chosen/bootargs`).
    pub append: String,
    /// A bundle other than the test image's (e.g. a damaged one); `None` boots with none at all
    /// only if `no_bundle` is set.
    pub bundle: Option<PathBuf>,
    /// Boot without any boot bundle.
    pub no_bundle: bool,
    /// The manifest to build, relative to the repository root.
    pub manifest: &'static str,
    /// QEMU's CPU model (`-cpu`).
    pub cpu: &'static str,
    /// Words appended to the command lines of the named domains (`(domain, words)`), in a bundle
    /// of their own built from the manifest's (see [`Boot::domain_args`]).
    pub domain_args: Vec<(String, String)>,
    /// RAM, in MiB.
    pub memory_mib: u64,
    /// `-icount shift=0`: QEMU runs the CPUs one at a time, round robin, in one thread.
    pub icount: bool,
    /// The unix socket of the control domain's virtio console, for a manifest that passes one
    /// through (`xenolith_images::qemu::wants_virtio_console`); a fresh one ([`xl_socket`]) if
    /// unset.
    pub xl_socket: Option<PathBuf>,
}

/// A fresh path for a test's virtio console socket, under `target/xenolith/` (QEMU creates the
/// socket there and replaces a stale one).
pub fn xl_socket() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let directory = workspace::root().join("target").join("xenolith");
    std::fs::create_dir_all(&directory)
        .unwrap_or_else(|error| panic!("creating {}: {error}", directory.display()));
    let name = format!("test-{}-{}.sock", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    directory.join(name)
}

impl Boot {
    /// The test image on `cpus` CPUs with `append` added to its command line.
    pub fn new(cpus: u32, append: &str) -> Self {
        Self {
            cpus,
            append: append.into(),
            bundle: None,
            no_bundle: false,
            manifest: "images/default.toml",
            cpu: xenolith_images::qemu::DEFAULT_CPU,
            domain_args: Vec::new(),
            memory_mib: 1024,
            icount: false,
            xl_socket: None,
        }
    }

    /// The control domain's virtio console on `socket` (for a manifest that passes one
    /// through).
    pub fn xl_socket(mut self, socket: &std::path::Path) -> Self {
        self.xl_socket = Some(socket.to_path_buf());
        self
    }

    /// Appends `words` (e.g. `seed=42`) to the command line of the manifest's domain `domain`.
    /// The system is then booted from a bundle of its own, written beside the manifest's.
    pub fn domain_args(mut self, domain: &str, words: &str) -> Self {
        self.domain_args.push((domain.into(), words.into()));
        self
    }

    /// QEMU's CPU model `cpu` (e.g. `cortex-a57`) instead of the default.
    pub fn cpu(mut self, cpu: &'static str) -> Self {
        self.cpu = cpu;
        self
    }

    /// `memory_mib` of RAM instead of 1 GiB.
    pub fn memory(mut self, memory_mib: u64) -> Self {
        self.memory_mib = memory_mib;
        self
    }

    /// Under `-icount shift=0`: the CPUs run one at a time in one host thread, so a CPU that
    /// waits for another without yielding its turn (a spin loop of `isb`) can wedge the system.
    pub fn icount(mut self) -> Self {
        self.icount = true;
        self
    }

    /// The system of `manifest` (relative to the repository root) instead of the default one.
    pub fn manifest(mut self, manifest: &'static str) -> Self {
        self.manifest = manifest;
        self
    }

    /// Starts QEMU. The `Running` watches its forbidden patterns until the test ends: dropping
    /// it (unless the test already failed) reads on for [`FINAL_WATCH`] and panics on one.
    pub fn start(&self) -> Running {
        let image = image_for(self.manifest);
        let bundle = if self.no_bundle {
            None
        } else if let Some(bundle) = &self.bundle {
            Some(bundle.clone())
        } else if !self.domain_args.is_empty() {
            Some(bundle_with_args(self.manifest, image, &self.domain_args))
        } else {
            Some(image.bundle.clone())
        };
        let config = QemuConfig {
            cpus: self.cpus,
            memory_mib: self.memory_mib,
            kernel: image.kernel.clone(),
            bundle,
            append: self.append.clone(),
            icount: self.icount,
            interactive: false,
            cpu: self.cpu,
            xl_socket: xenolith_images::qemu::wants_virtio_console(&image.manifest)
                .then(|| self.xl_socket.clone().unwrap_or_else(xl_socket)),
        };
        let mut running = Running::start(&config).unwrap_or_else(|error| panic!("{error:#}"));
        running.finish_on_drop(FINAL_WATCH);
        running
    }
}

/// The boot bundle of `image` (built from `manifest`) with `args` appended to its domains'
/// command lines, written beside the image's own bundle under a name the arguments decide.
fn bundle_with_args(manifest: &str, image: &SystemImage, args: &[(String, String)]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut edited = image.manifest.clone();
    for (name, words) in args {
        let Some(domain) = edited.domains.iter_mut().find(|domain| &domain.name == name) else {
            panic!("{manifest} has no domain {name:?} to give the arguments {words:?}");
        };
        domain.cmdline.push(' ');
        domain.cmdline.push_str(words);
    }
    let bundle = workspace::build_bundle(&edited)
        .unwrap_or_else(|error| panic!("building {manifest}'s bundle with {args:?}: {error:#}"));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    args.hash(&mut hasher);
    let path = image.bundle.with_file_name(format!("bundle-{:016x}.bin", hasher.finish()));
    std::fs::write(&path, bundle)
        .unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
    path
}

/// The seed of a randomized test: `XENOLITH_SEED` if set (decimal or `0x` hex), else taken from
/// the clock. Printed, so that a failing run can be replayed with the same seed.
pub fn seed() -> u64 {
    let seed = match std::env::var("XENOLITH_SEED") {
        Ok(text) => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("XENOLITH_SEED={text:?} is not a number"))
        }
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            // The low 32 bits are plenty, and short to type.
            (now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(17)) & 0xffff_ffff
        }
    };
    println!("seed {seed} (replay with XENOLITH_SEED={seed})");
    seed
}

/// Waits for every marker in order, panicking with the serial tail on the first failure.
pub fn expect_all(running: &mut Running, markers: &[&str]) {
    for marker in markers {
        if let Err(error) = running.wait_for(marker, TIMEOUT) {
            panic!("{error}");
        }
    }
}

/// Waits for every marker, in any order, panicking with the serial tail on failure.
pub fn expect_unordered(running: &mut Running, markers: &[&str]) {
    if let Err(error) = running.wait_for_all(markers, TIMEOUT) {
        panic!("{error}");
    }
}

/// Waits for every marker, in any order, and returns each one's line with its serial line
/// number (in `markers`' order), for checks of their order. Panics with the serial tail on
/// failure.
pub fn expect_unordered_numbered(running: &mut Running, markers: &[&str]) -> Vec<(u64, String)> {
    running.wait_for_all_numbered(markers, TIMEOUT).unwrap_or_else(|error| panic!("{error}"))
}

/// Waits for QEMU to exit by itself with status 0 (the core powered off).
pub fn expect_power_off(running: &mut Running) {
    match running.wait_for_exit(TIMEOUT) {
        Ok(status) if status.success() => {}
        Ok(status) => {
            panic!("QEMU exited with {status}; expected a clean power-off\n{:#?}", running.tail())
        }
        Err(error) => panic!("{error}"),
    }
}

/// Moves the console domain's input focus (Ctrl-] three times) until it is on `name`.
pub fn focus(running: &mut Running, name: &str) {
    for _ in 0..16 {
        running.type_input(b"\x1d\x1d\x1d").expect("typing on the UART");
        let line = running
            .wait_for("[console] input to ", TIMEOUT)
            .unwrap_or_else(|error| panic!("{error}"));
        if line.trim_end().ends_with(&format!("input to {name}")) {
            return;
        }
    }
    panic!("the input focus never reached {name}");
}

/// Types `command` at the focused console.
pub fn type_line(running: &mut Running, command: &str) {
    running.type_input(format!("{command}\r").as_bytes()).expect("typing on the UART");
}
