//! The typed keys: what xl.cfg(5) says they mean, read from a parsed [`Config`].
//!
//! # Rules (Xen 4.17: `docs/man/xl.cfg.5.pod.in`, `tools/xl/xl_parse.c`, `tools/libs/light/`)
//! - `name` is mandatory (xl.cfg(5) "Mandatory Configuration Items").
//! - `type`: xl compares with `strncmp(value, "hvm"/"pv"/"pvh", strlen(value))` in that order, so
//!   any prefix counts (`"p"` is pv); anything else is "Invalid domain type". On Arm, libxl turns
//!   `pv` into `pvh` with a warning (`libxl_arm.c`: "Converting PV guest to PVH.") and refuses
//!   anything but PVH ("Unsupported Arm guest type"). Xenolith runs Arm guests, so it does the
//!   same: `pv` becomes [`DomainType::Pvh`] with a warning, `hvm` is refused. Default: `pvh`
//!   ("This is the default on Arm").
//! - `memory`/`maxmem` are MiB; libxl's default is 32 MiB (`libxl_create.c`) and `maxmem`
//!   defaults to `memory` (`xl_parse.c`); xl.cfg(5): `maxmem` must be at least `memory`.
//! - `vcpus` below 1 becomes 1 (`xl_parse.c`); `maxvcpus` defaults to `vcpus` and may not be less.
//! - `cpu_weight` (xl's key, 1..=65535, default 256) and `cap` (percent of one CPU, 0 = none).
//!   The issue's `weight` is read from `cpu_weight`; a key spelled `weight` is unknown to xl.
//! - `on_poweroff`/`on_reboot`/`on_crash`: destroy, restart, rename-restart, preserve,
//!   coredump-destroy, coredump-restart, soft-reset; defaults destroy/restart/destroy; otherwise
//!   "Unknown on_X action".
//! - Command line (`xl_parse.c`): `cmdline` wins over `root`/`extra`, with the warning
//!   "ignoring root= and extra= in favour of cmdline="; else `root=ROOT EXTRA`.
//! - `irqs` are decimal below 2^32-1; `iomem`, `dtdev`, `vif`, `disk` per [`crate::devices`].
//! - A number is C's `strtol(…, 0)` of the whole text and refuses `+=` ("can't use += with
//!   numbers"); a single value where a list belongs, or the reverse, is refused.
//! - Unknown keys: xl reads only the keys it knows and never looks at others, so it ignores
//!   unknown keys silently. Xenolith accepts them too, but returns each key it does not read as a
//!   [`Warning`] so the caller can say so.
//!
//! # Departures from xl
//! Where xl prints a warning and then uses the default (an unparsable number, a list given for a
//! string), Xenolith refuses the file: booting a guest with other memory than the file says is
//! worse than not booting it.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::devices::{
    parse_cpulist, parse_disk, parse_iomem, parse_vif, CpuList, Disk, IomemRange, Vif,
};
use crate::number::{strtol, NumError};
use crate::syntax::{parse, Config, Op, ParseError, Pos, Setting, Value};

/// The guest types Xenolith builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainType {
    /// Xen on Arm's only guest type.
    Pvh,
}

/// What to do when the guest stops (xl.cfg(5) "Event Actions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `destroy`.
    Destroy,
    /// `restart`.
    Restart,
    /// `rename-restart`.
    RenameRestart,
    /// `preserve`.
    Preserve,
    /// `coredump-destroy`.
    CoredumpDestroy,
    /// `coredump-restart`.
    CoredumpRestart,
    /// `soft-reset`.
    SoftReset,
}

const ACTIONS: [(&str, Action); 7] = [
    ("destroy", Action::Destroy),
    ("restart", Action::Restart),
    ("rename-restart", Action::RenameRestart),
    ("preserve", Action::Preserve),
    ("coredump-destroy", Action::CoredumpDestroy),
    ("coredump-restart", Action::CoredumpRestart),
    ("soft-reset", Action::SoftReset),
];

/// A remark that does not refuse the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What was noticed.
    pub message: String,
}

/// A domain as its xl.cfg file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfig {
    /// `name`.
    pub name: String,
    /// `type`.
    pub domain_type: DomainType,
    /// `memory`, MiB.
    pub memory_mib: u64,
    /// `maxmem`, MiB.
    pub maxmem_mib: u64,
    /// `vcpus`.
    pub vcpus: u32,
    /// `maxvcpus`.
    pub maxvcpus: u32,
    /// `cpus` (hard affinity); `None` if absent.
    pub cpus: Option<CpuList>,
    /// `cpus_soft`.
    pub cpus_soft: Option<CpuList>,
    /// `kernel`.
    pub kernel: Option<String>,
    /// `ramdisk`.
    pub ramdisk: Option<String>,
    /// The guest command line from `cmdline`, or `root` and `extra`.
    pub cmdline: Option<String>,
    /// `on_poweroff`.
    pub on_poweroff: Action,
    /// `on_reboot`.
    pub on_reboot: Action,
    /// `on_crash`.
    pub on_crash: Action,
    /// `cpu_weight`.
    pub weight: u16,
    /// `cap`, percent of one CPU, 0 = none.
    pub cap: u32,
    /// `vif`.
    pub vifs: Vec<Vif>,
    /// `disk`.
    pub disks: Vec<Disk>,
    /// `iomem`.
    pub iomem: Vec<IomemRange>,
    /// `irqs`.
    pub irqs: Vec<u32>,
    /// `dtdev`.
    pub dtdevs: Vec<String>,
}

/// A domain configuration and the warnings met while reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The configuration.
    pub config: DomainConfig,
    /// Unknown keys, PV turned into PVH, ignored `root`/`extra`, unrecognised vif options.
    pub warnings: Vec<Warning>,
}

/// The keys [`parse_domain`] reads.
pub const KNOWN_KEYS: &[&str] = &[
    "name",
    "type",
    "memory",
    "maxmem",
    "vcpus",
    "maxvcpus",
    "cpus",
    "cpus_soft",
    "kernel",
    "ramdisk",
    "extra",
    "cmdline",
    "root",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "cpu_weight",
    "cap",
    "vif",
    "disk",
    "iomem",
    "irqs",
    "dtdev",
];

/// The largest `memory`/`maxmem`, MiB: what fits libxl's `uint64_t` KiB is far beyond any board;
/// we stop at 1 TiB so a typo cannot ask for the impossible.
pub const MAX_MEMORY_MIB: u64 = 1 << 20;
/// The largest `vcpus`/`maxvcpus`: Xen on Arm's `MAX_VIRT_CPUS` for arm64
/// (`xen/arch/arm/include/asm/config.h`).
pub const MAX_VCPUS: u32 = 128;

struct Reader<'a> {
    cfg: &'a Config,
    warnings: Vec<Warning>,
}

fn err(pos: Pos, message: impl Into<String>) -> ParseError {
    ParseError::at(pos, message)
}

impl<'a> Reader<'a> {
    fn string(&self, key: &str) -> Result<Option<(&'a str, Pos)>, ParseError> {
        let cfg: &'a Config = self.cfg;
        match cfg.get(key) {
            None => Ok(None),
            Some(Setting { value: Value::Atom(s, p), .. }) => Ok(Some((s.as_str(), *p))),
            Some(Setting { value: Value::List(_, p), .. }) => {
                Err(err(*p, format!("parameter `{key}' is a list but should be a single value")))
            }
        }
    }

    fn number(&self, key: &str, min: i64, max: i64) -> Result<Option<(i64, Pos)>, ParseError> {
        let Some((text, pos)) = self.string(key)? else { return Ok(None) };
        if self.cfg.get(key).is_some_and(|s| s.op == Op::Add) {
            return Err(err(pos, format!("can't use += with numbers for parameter `{key}'")));
        }
        let v = strtol(text, 0).map_err(|e| {
            let why = match e {
                NumError::Invalid => "Invalid argument",
                NumError::Range => "Numerical result out of range",
            };
            err(pos, format!("parameter `{key}' could not be parsed as a number: {why}"))
        })?;
        if v < min || v > max {
            return Err(err(pos, format!("parameter `{key}' is {v}, outside {min}..={max}")));
        }
        Ok(Some((v, pos)))
    }

    fn list(&self, key: &str) -> Result<Vec<(&'a str, Pos)>, ParseError> {
        let cfg: &'a Config = self.cfg;
        match cfg.get(key) {
            None => Ok(Vec::new()),
            Some(Setting { value: Value::Atom(_, p), .. }) => {
                Err(err(*p, format!("parameter `{key}' is a single value but should be a list")))
            }
            Some(Setting { value: Value::List(items, _), .. }) => items
                .iter()
                .map(|v| match v {
                    Value::Atom(s, p) => Ok((s.as_str(), *p)),
                    Value::List(_, p) => {
                        Err(err(*p, format!("parameter `{key}': a list item is itself a list")))
                    }
                })
                .collect(),
        }
    }

    fn warn(&mut self, pos: Pos, message: String) {
        self.warnings.push(Warning { line: pos.line, column: pos.column, message });
    }

    fn action(&self, key: &str, default: Action) -> Result<Action, ParseError> {
        let Some((s, pos)) = self.string(key)? else { return Ok(default) };
        ACTIONS
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, a)| *a)
            .ok_or_else(|| err(pos, format!("Unknown {key} action \"{s}\" specified")))
    }

    fn cpulist(&self, key: &str) -> Result<Option<CpuList>, ParseError> {
        if let Some(Setting { value: Value::List(_, p), .. }) = self.cfg.get(key) {
            return Err(err(*p, format!("`{key}' as a per-vCPU list is not supported")));
        }
        let Some((s, pos)) = self.string(key)? else { return Ok(None) };
        parse_cpulist(s).map(Some).map_err(|m| err(pos, format!("`{key}': {m}")))
    }
}

/// Parses an xl.cfg file and reads the keys Xenolith uses.
pub fn parse_domain(text: &str) -> Result<Parsed, ParseError> {
    let cfg = parse(text)?;
    let mut r = Reader { cfg: &cfg, warnings: Vec::new() };

    let name = match r.string("name")? {
        Some(("", pos)) => return Err(err(pos, "`name' is empty")),
        Some((n, _)) => n.to_string(),
        None => return Err(err(cfg.end, "mandatory key `name' is missing")),
    };

    let domain_type = match r.string("type")? {
        None => DomainType::Pvh,
        Some((t, pos)) => {
            let is = |full: &str| full.starts_with(t);
            if is("hvm") {
                return Err(err(
                    pos,
                    "Unsupported Arm guest type hvm: Xenolith runs Arm guests, which Xen builds \
                     only as PVH (no emulated BIOS or device model)",
                ));
            } else if is("pv") {
                r.warn(pos, "Converting PV guest to PVH (Arm guests are PVH)".to_string());
                DomainType::Pvh
            } else if is("pvh") {
                DomainType::Pvh
            } else {
                return Err(err(pos, format!("Invalid domain type {t}.")));
            }
        }
    };

    let max_mem = i64::try_from(MAX_MEMORY_MIB).unwrap_or(i64::MAX);
    let memory = r.number("memory", 1, max_mem)?;
    let maxmem = r.number("maxmem", 1, max_mem)?;
    let memory_mib = memory.map_or(32, |(v, _)| v as u64);
    let maxmem_mib = match maxmem {
        Some((v, pos)) if (v as u64) < memory_mib => {
            return Err(err(pos, format!("maxmem ({v}) is less than memory ({memory_mib})")))
        }
        Some((v, _)) => v as u64,
        None => memory_mib,
    };

    let max_vcpus = i64::from(MAX_VCPUS);
    let vcpus = r.number("vcpus", i64::MIN, max_vcpus)?.map_or(1, |(v, _)| v.max(1) as u32);
    let maxvcpus = match r.number("maxvcpus", 1, max_vcpus)? {
        Some((v, pos)) if (v as u32) < vcpus => {
            return Err(err(pos, format!("maxvcpus ({v}) is less than vcpus ({vcpus})")))
        }
        Some((v, _)) => v as u32,
        None => vcpus,
    };

    let cpus = r.cpulist("cpus")?;
    let cpus_soft = r.cpulist("cpus_soft")?;
    let kernel = r.string("kernel")?.map(|(s, _)| s.to_string());
    let ramdisk = r.string("ramdisk")?.map(|(s, _)| s.to_string());

    let root = r.string("root")?;
    let extra = r.string("extra")?;
    let cmdline = match (r.string("cmdline")?, root, extra) {
        (Some((c, pos)), root, extra) => {
            if root.is_some() || extra.is_some() {
                r.warn(pos, "ignoring root= and extra= in favour of cmdline=".to_string());
            }
            Some(c.to_string())
        }
        (None, Some((root, _)), Some((extra, _))) => Some(format!("root={root} {extra}")),
        (None, Some((root, _)), None) => Some(format!("root={root}")),
        (None, None, Some((extra, _))) => Some(extra.to_string()),
        (None, None, None) => None,
    };

    let on_poweroff = r.action("on_poweroff", Action::Destroy)?;
    let on_reboot = r.action("on_reboot", Action::Restart)?;
    let on_crash = r.action("on_crash", Action::Destroy)?;
    let weight = r.number("cpu_weight", 1, 65535)?.map_or(256, |(v, _)| v as u16);
    let cap = r.number("cap", 0, i64::from(u32::MAX))?.map_or(0, |(v, _)| v as u32);

    let mut vifs = Vec::new();
    for (spec, pos) in r.list("vif")? {
        let (vif, unknown) = parse_vif(spec).map_err(|m| err(pos, m))?;
        for u in unknown {
            r.warn(pos, u);
        }
        vifs.push(vif);
    }
    let disks = r
        .list("disk")?
        .into_iter()
        .map(|(s, pos)| parse_disk(s).map_err(|m| err(pos, format!("disk `{s}': {m}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let iomem = r
        .list("iomem")?
        .into_iter()
        .map(|(s, pos)| parse_iomem(s).map_err(|m| err(pos, m)))
        .collect::<Result<Vec<_>, _>>()?;
    let irqs = r
        .list("irqs")?
        .into_iter()
        .map(|(s, pos)| match strtol(s, 10) {
            Ok(v) if (0..i64::from(u32::MAX)).contains(&v) => Ok(v as u32),
            Ok(_) | Err(NumError::Range) => Err(err(pos, format!("irq {s} too big"))),
            Err(NumError::Invalid) => Err(err(pos, format!("Invalid argument parsing irq: {s}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dtdevs = r.list("dtdev")?.into_iter().map(|(s, _)| s.to_string()).collect();

    let mut seen: Vec<&str> = Vec::new();
    for s in &cfg.settings {
        if !KNOWN_KEYS.contains(&s.key.as_str()) && !seen.contains(&s.key.as_str()) {
            seen.push(&s.key);
            let hint = if s.key == "weight" { " (xl's key is `cpu_weight')" } else { "" };
            r.warn(s.key_pos, format!("key `{}' is not used by Xenolith and ignored{hint}", s.key));
        }
    }

    let warnings = r.warnings;
    Ok(Parsed {
        config: DomainConfig {
            name,
            domain_type,
            memory_mib,
            maxmem_mib,
            vcpus,
            maxvcpus,
            cpus,
            cpus_soft,
            kernel,
            ramdisk,
            cmdline,
            on_poweroff,
            on_reboot,
            on_crash,
            weight,
            cap,
            vifs,
            disks,
            iomem,
            irqs,
            dtdevs,
        },
        warnings,
    })
}
