//! What a manifest mistake is: [`ManifestError`] (file, line, column and a sentence) and its
//! kind, one [`ErrorKind`] per distinct check; and what is only remarked on, [`ManifestWarning`].

use std::fmt;
use std::path::{Path, PathBuf};

use super::Position;

/// A manifest error: where it is and a sentence saying what is wrong and what to do.
///
/// Displays as `images/foo.toml:3:7: error: <message>` (`images/foo.toml: error: <message>` for
/// [`ErrorKind::Io`]); the I/O error, if any, is the [`source`](std::error::Error::source), not
/// repeated in the message. A mistake inside a domain's xl.cfg file is located in that file and
/// names the manifest's `xl` key after the message:
/// `images/guests/a.cfg:3:9: error: <message> (read for `xl` at images/foo.toml:12:6)`.
#[derive(Debug, thiserror::Error)]
#[error("{}: error: {message}{}", Location::new(.path, .line, .column), ReadFor(.xl_key))]
pub struct ManifestError {
    /// The manifest file, or the xl.cfg file the mistake is in (then [`ManifestError::xl_key`]
    /// is set).
    pub path: PathBuf,
    /// 1-based line; 0 for [`ErrorKind::Io`], which is about no place in the file.
    pub line: usize,
    /// 1-based column, in characters; 0 for [`ErrorKind::Io`].
    pub column: usize,
    /// What kind of mistake it is.
    pub kind: ErrorKind,
    /// What is wrong and what to do, one sentence without the location.
    pub message: String,
    /// For a mistake inside a domain's xl.cfg file: the manifest and the place of the `xl` value
    /// that names the file.
    pub xl_key: Option<(PathBuf, Position)>,
    #[source]
    pub(super) source: Option<std::io::Error>,
}

impl ManifestError {
    /// Where the mistake is in the manifest: its own place, or that of the `xl` key naming the
    /// xl.cfg file it is in. Errors are listed in this order.
    pub fn manifest_position(&self) -> Position {
        match &self.xl_key {
            Some((_, at)) => *at,
            None => Position { line: self.line, column: self.column },
        }
    }
}

/// Formats ` (read for `xl` at images/foo.toml:12:6)`, or nothing.
struct ReadFor<'a>(&'a Option<(PathBuf, Position)>);

impl fmt::Display for ReadFor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((manifest, at)) => {
                write!(f, " (read for `xl` at {}:{}:{})", manifest.display(), at.line, at.column)
            }
            None => Ok(()),
        }
    }
}

/// A remark that does not refuse the manifest: something xl accepts but notes (an unknown key in
/// an xl.cfg file, `type = "pv"` made PVH, ...), or an xl.cfg setting Xenolith honours only in
/// part. The host tool prints it and goes on.
///
/// Displays as `images/guests/a.cfg:4:1: warning: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestWarning {
    /// The file it is about (an xl.cfg file).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What was noticed.
    pub message: String,
}

impl fmt::Display for ManifestWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = Location::new(&self.path, &self.line, &self.column);
        write!(f, "{location}: warning: {}", self.message)
    }
}

/// Formats `path:line:column`, or only `path` when there is no line.
struct Location<'a> {
    path: &'a Path,
    line: usize,
    column: usize,
}

impl<'a> Location<'a> {
    fn new(path: &'a Path, line: &usize, column: &usize) -> Self {
        Location { path, line: *line, column: *column }
    }
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line != 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        Ok(())
    }
}

/// The kinds of manifest mistake, one per distinct check. A check of a domain's value (its name,
/// memory, vCPUs, cap, affinity, shutdown actions, kernel and ramdisk files) applies the same to
/// the value its xl.cfg file gives, and then locates the error in that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The file cannot be read (missing, unreadable, not UTF-8).
    Io,
    /// The file is not valid TOML (including a key given twice).
    Syntax,
    /// A key or table the manifest format does not have, usually a typo.
    UnknownKey,
    /// A required key or table is absent.
    MissingKey,
    /// A value of the wrong TOML type, such as a string where a number belongs.
    WrongType,
    /// `[system] name`, a domain's `name` or its `program` is empty, too long or has a character
    /// outside `[A-Za-z0-9_-]`.
    BadName,
    /// `[qemu] cpus` is outside 1..=[`MAX_CPUS`](super::MAX_CPUS).
    CpusOutOfRange,
    /// `[qemu] memory` or a domain's `memory` is not a size: not a whole number with an optional K,
    /// M or G suffix.
    BadMemorySize,
    /// `[qemu] memory` or a domain's `memory` is a size, but not a whole number of MiB.
    MemoryNotWholeMib,
    /// `[qemu] memory` is outside [`MEMORY_MIN_MIB`](super::MEMORY_MIN_MIB)..=[`MEMORY_MAX_MIB`](super::MEMORY_MAX_MIB) MiB, or a domain's
    /// `memory` (in the manifest or its xl.cfg file) outside 1..=[`DOMAIN_MEMORY_MAX_MIB`](xenolith_abi::bundle::DOMAIN_MEMORY_MAX_MIB) MiB.
    MemoryOutOfRange,
    /// The core's command-line parser reports a diagnostic for `[hypervisor] cmdline`.
    BadCmdline,
    /// Two domains have the same `name`.
    DuplicateDomain,
    /// A domain has more than one of `program`, `image` and `kernel`, or none (for a domain with
    /// `xl`: neither its xl.cfg file's `kernel` nor the manifest's `program`).
    ProgramOrImage,
    /// A domain's `image`, `kernel` or `ramdisk` file does not exist (or is not a file); for a
    /// `kernel` or `ramdisk` of an xl.cfg file, relative to that file.
    ImageNotFound,
    /// A `kernel` or `ramdisk` value `debian:<name>` names nothing the host tool fetches, or
    /// another key's artifact.
    UnknownDebianArtifact,
    /// A domain gives `cmdline` together with `root` or `extra`.
    CmdlineConflict,
    /// A domain's `image` or `kernel`, or the binary its `program` built, cannot boot as that
    /// domain: it is neither an AArch64 ELF executable nor an arm64 Linux `Image`, or it, its
    /// ramdisk or its device tree does not fit the domain's memory (found when the system is
    /// built).
    BadImage,
    /// A domain's `program` is not a binary crate of this workspace (found when the system is
    /// built, from `cargo metadata`).
    UnknownProgram,
    /// An entry of `capabilities` is not a capability.
    BadCapability,
    /// A domain's `iomem`, `irqs` or `direct_map` is malformed, given without a `hardware:`
    /// capability or to a domain not built at boot, clashes with the domain's own layout or
    /// another domain's hardware, or puts the window outside the RAM `[qemu] memory` gives.
    BadPassthrough,
    /// A domain's `vif` entry does not parse as xl.cfg's `NET_SPEC_STRING`, or has an option
    /// xl would skip.
    BadVif,
    /// A domain's `vuart` is not `"sbsa_uart"`.
    BadVuart,
    /// A domain's `disk` entry does not parse as xl-disk-configuration(5)'s `DISKSPEC`, is not
    /// a raw `specification=virtio` disk (a `xen` disk needs blkback, which Xenolith does not
    /// have), has a parameter or value a virtio disk does not take, a `target` that is neither
    /// a whole number of sectors nor `xenolith:ext4:<MiB>` of a size a preserved region holds,
    /// or is a second disk (one for now).
    BadDisk,
    /// A domain with `vuart` or a virtio `disk` has no device-model domain
    /// (`program = "device-model"` with `dm:<it>`), or more than one.
    DeviceModelCount,
    /// A device-model domain holds no `dm:` capability or more than one, or its target has
    /// nothing to emulate (neither `vuart` nor a virtio `disk`).
    DeviceModelTarget,
    /// A device-model domain gives `cmdline`, `root`, `extra`, `ramdisk` or `xl`: this tool
    /// generates its command line and ramdisk.
    DeviceModelGenerated,
    /// A device-model domain's `preserved_kib` is below its guest's disk size in KiB plus the
    /// 1024 KiB of its own state.
    DeviceModelPreserved,
    /// A `dm:` or `introspect:` capability names no domain of the manifest, or its own domain.
    CapabilityTarget,
    /// A domain lists a capability twice.
    DuplicateCapability,
    /// More than one domain holds `xenstore`.
    DuplicateXenstore,
    /// A domain's `vcpus` is outside 1..=[`MAX_VCPUS`](xenolith_abi::bundle::MAX_VCPUS).
    VcpusOutOfRange,
    /// A domain's `weight` is outside 1..=65535.
    WeightOutOfRange,
    /// A domain's `cap` is outside 0..=[`CAP_PERCENT_PER_VCPU`](xenolith_abi::bundle::CAP_PERCENT_PER_VCPU) × `vcpus`.
    CapOutOfRange,
    /// A domain's `cpus` or `cpus_soft` is not "all" or a list of distinct pCPU numbers below
    /// [`AFFINITY_CPUS`](xenolith_abi::bundle::AFFINITY_CPUS), or is an empty list.
    BadAffinity,
    /// A domain's `restart` is not "never", "on-crash" or "always".
    BadRestart,
    /// A domain's `on_poweroff`, `on_reboot` or `on_crash` is not "destroy", "restart" or
    /// "preserve".
    BadShutdownAction,
    /// A domain's `preserved_kib` is not a multiple of 4 or is too large.
    BadPreserved,
    /// A domain's `xl` file does not exist or is not readable UTF-8 text.
    XlNotFound,
    /// A domain's xl.cfg file is refused by the xl.cfg parser (`xenolith-xlcfg`): its syntax, or
    /// a value xl would refuse.
    BadXlConfig,
    /// A domain with `xl` gives in the manifest a setting that comes from its xl.cfg file (the
    /// message names the file's place when the file gives it too).
    XlConflict,
    /// A domain's xl.cfg file asks for devices Xenolith cannot give it yet: `vif`, `disk`
    /// (no network or block backend), `iomem`, `irqs`, `dtdev` (no passthrough).
    XlUnsupported,
    /// A domain with `boot = false`, which the control domain creates at run time from its
    /// xl.cfg text, has a setting xl.cfg has no word for: `capabilities` (the control domain
    /// creates only plain guests), a non-zero `preserved_kib`, or emulated devices (`vuart`,
    /// `disk`: their device model serves boot domains only).
    RunTimeSetting,
    /// A domain with `boot = false` has a module the control domain could not find by name: its
    /// xl.cfg text `<name>.cfg`, its image or its ramdisk has a module name longer than the
    /// [`XENOLITH_BUNDLE_NAME_LEN`](xenolith_abi::xen::private::XENOLITH_BUNDLE_NAME_LEN) bytes
    /// `XENOLITH_DOMCTL_BUNDLE_INFO` reports.
    RunTimeModuleName,
}
