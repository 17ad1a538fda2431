//! The spec strings inside xl.cfg values: CPU lists, `vif` and `disk` specs, `iomem` ranges.
//!
//! Each is a string xl splits itself (`tools/xl/xl_parse.c`, `docs/man/xl.cfg.5.pod.in`,
//! `docs/man/xl-disk-configuration.5.pod.in`); the functions here return a reason string and the
//! caller attaches the position of the value.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::number::strtol;

/// Host CPUs a guest may use (`cpus=`, `cpus_soft=`), as a sorted list without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuList {
    /// `"all"`: no pinning.
    All,
    /// The CPUs named.
    Cpus(Vec<u32>),
}

/// The largest CPU number accepted in a CPU list (Xenolith's boards have far fewer).
pub const MAX_CPU: u32 = 1023;

fn cpu_number(s: &str) -> Result<u32, String> {
    let n = strtol(s, 10).map_err(|_| format!("`{s}' is not a CPU number"))?;
    u32::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_CPU)
        .ok_or_else(|| format!("CPU {s} is out of range 0-{MAX_CPU}"))
}

/// Parses a `CPULIST` string: `"all"` or comma-separated `N`, `N-M`, `^N`, `^N-M` (xl.cfg(5),
/// `cpus=`; `^` removes CPUs). The `node:`/`nodes:` forms are refused: Xenolith has no NUMA nodes.
pub fn parse_cpulist(text: &str) -> Result<CpuList, String> {
    if text == "all" {
        return Ok(CpuList::All);
    }
    let mut set: Vec<u32> = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.starts_with("node") {
            return Err(format!("`{part}': NUMA node CPU lists are not supported (no NUMA nodes)"));
        }
        let (remove, range) = match part.strip_prefix('^') {
            Some(r) => (true, r),
            None => (false, part),
        };
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (cpu_number(a)?, cpu_number(b)?),
            None if range == "all" => (0, MAX_CPU),
            None => {
                let n = cpu_number(range)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("`{part}': range start is above its end"));
        }
        for c in lo..=hi {
            if remove {
                set.retain(|x| *x != c);
            } else if !set.contains(&c) {
                set.push(c);
            }
        }
    }
    set.sort_unstable();
    Ok(CpuList::Cpus(set))
}

/// One `vif=` entry: its `key=value` options in order (`parse_nic_config` in `xl_parse.c`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vif {
    /// Every recognised option, in order.
    pub options: Vec<(String, String)>,
}

impl Vif {
    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The entry written back as a `NET_SPEC_STRING` that [`parse_vif`] reads as this one.
    pub fn spec(&self) -> String {
        let pieces: Vec<String> = self
            .options
            .iter()
            .map(|(k, v)| match (k.as_str(), v.is_empty()) {
                ("trusted" | "untrusted", true) => k.clone(),
                _ => format!("{k}={v}"),
            })
            .collect();
        pieces.join(",")
    }

    /// `mac=`, as six octets.
    pub fn mac(&self) -> Option<[u8; 6]> {
        self.get("mac").and_then(|m| parse_mac(m).ok())
    }
}

/// The options `parse_nic_config` in `xl_parse.c` recognises (its COLO options excepted: they
/// are recognised by prefix below).
const VIF_KEYS: &[&str] = &[
    "type",
    "mac",
    "bridge",
    "netdev",
    "gatewaydev",
    "ip",
    "script",
    "backend",
    "vifname",
    "model",
    "rate",
    "forwarddev",
    "accel",
    "devid",
    "mtu",
    "vlan",
    "trusted",
    "untrusted",
];

fn parse_mac(m: &str) -> Result<[u8; 6], String> {
    let bad = || format!("Invalid parameter `mac' (`{m}')");
    let mut out = [0u8; 6];
    let mut parts = m.split(':');
    for o in &mut out {
        let p = parts.next().ok_or_else(bad)?;
        if p.is_empty() || p.len() > 2 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(out)
}

/// Parses a `NET_SPEC_STRING`. As xl does, the string is cut at commas (empty pieces skipped),
/// leading spaces dropped; `mac` must be six hex octets ("Invalid parameter `mac'." is fatal in
/// xl); an unknown option is reported and skipped ("unrecognized argument", which xl prints and
/// then carries on): those come back in the second element.
pub fn parse_vif(spec: &str) -> Result<(Vif, Vec<String>), String> {
    let mut vif = Vif::default();
    let mut unknown = Vec::new();
    for piece in spec.split(',').filter(|p| !p.is_empty()) {
        let piece = piece.trim_start_matches(' ');
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let known = VIF_KEYS.contains(&k) || k.starts_with("colo_");
        if !known || (!piece.contains('=') && k != "trusted" && k != "untrusted") {
            unknown.push(format!("unrecognized argument `{piece}'"));
            continue;
        }
        if k == "mac" {
            parse_mac(v)?;
        }
        if k == "type" && v != "vif" && v != "ioemu" {
            return Err("Invalid parameter `type'.".to_string());
        }
        vif.options.push((k.to_string(), v.to_string()));
    }
    Ok((vif, unknown))
}

/// Read-only or read/write (`access=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `ro` or `r`.
    ReadOnly,
    /// `rw` or `w`.
    ReadWrite,
}

/// One `disk=` entry (xl-disk-configuration(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Block device or image path; `None` only for an empty CD-ROM.
    pub target: Option<String>,
    /// `raw` (default), `qcow`, `qcow2`, `vhd` or `qed`.
    pub format: String,
    /// The guest's name for it (`xvda`, ...); mandatory.
    pub vdev: String,
    /// Default `rw`, or `r` for a CD-ROM.
    pub access: Access,
    /// `devtype=cdrom` or the bare `cdrom` flag.
    pub cdrom: bool,
    /// Other `key=value` parameters (`backend=`, `script=`, ...), kept for the caller.
    pub other: Vec<(String, String)>,
}

const DISK_FORMATS: &[&str] = &["raw", "qcow", "qcow2", "vhd", "qed"];
const POSITIONAL: [&str; 4] = ["target", "format", "vdev", "access"];

/// Parses a `DISKSPEC` (xl-disk-configuration(5)): comma-separated positional `target, format,
/// vdev, access` and `key=value` parameters, each at most once; an empty value means the default;
/// white space before a parameter is ignored; `target=` takes the whole rest of the spec.
/// The deprecated `format:target` and `vdev:cdrom` prefix forms are refused.
pub fn parse_disk(spec: &str) -> Result<Disk, String> {
    let mut fields: [Option<String>; 4] = Default::default();
    let mut next_positional = 0;
    let mut devtype: Option<String> = None;
    let mut other = Vec::new();
    let mut rest = spec;
    loop {
        let trimmed = rest.trim_start();
        if let Some(t) = trimmed.strip_prefix("target=") {
            set_once(&mut fields[0], t, "target")?;
            break;
        }
        let (piece, tail) = match trimmed.split_once(',') {
            Some((p, t)) => (p, Some(t)),
            None => (trimmed, None),
        };
        if let Some((k, v)) = piece.split_once('=') {
            match POSITIONAL.iter().position(|p| *p == k) {
                Some(i) => set_once(&mut fields[i], v, k)?,
                None if k == "devtype" => {
                    if devtype.replace(v.to_string()).is_some() {
                        return Err("parameter `devtype' given twice".to_string());
                    }
                }
                None => other.push((k.to_string(), v.to_string())),
            }
        } else if piece == "cdrom" {
            devtype = Some("cdrom".to_string());
        } else {
            while next_positional < 4 && fields[next_positional].is_some() {
                next_positional += 1;
            }
            if next_positional == 4 {
                return Err(format!("too many positional parameters at `{piece}'"));
            }
            if next_positional == 0 && piece.contains(':') {
                return Err(format!(
                    "`{piece}': the deprecated `format:target' prefix syntax is not supported"
                ));
            }
            fields[next_positional] = Some(piece.to_string());
            next_positional += 1;
        }
        match tail {
            Some(t) => rest = t,
            None => break,
        }
    }
    let [target, format, vdev, access] = fields;
    let cdrom = match devtype.as_deref() {
        None | Some("" | "disk") => false,
        Some("cdrom") => true,
        Some(d) => return Err(format!("unknown devtype `{d}'")),
    };
    let format = format.filter(|f| !f.is_empty()).unwrap_or_else(|| "raw".to_string());
    if !DISK_FORMATS.contains(&format.as_str()) {
        return Err(format!("unknown disk format `{format}'"));
    }
    let vdev = vdev.filter(|v| !v.is_empty()).ok_or("no vdev specified")?;
    let access = match access.as_deref() {
        None | Some("") if cdrom => Access::ReadOnly,
        None | Some("") => Access::ReadWrite,
        Some("ro" | "r") => Access::ReadOnly,
        Some("rw" | "w") => Access::ReadWrite,
        Some(a) => return Err(format!("unknown access `{a}' (ro, r, rw or w)")),
    };
    let target = target.filter(|t| !t.is_empty());
    if target.is_none() && !cdrom {
        return Err("no target specified".to_string());
    }
    Ok(Disk { target, format, vdev, access, cdrom, other })
}

fn set_once(slot: &mut Option<String>, v: &str, name: &str) -> Result<(), String> {
    // xl-disk-configuration(5): an explicit `target=` may follow an empty positional target.
    if slot.as_deref().is_some_and(|s| !(name == "target" && s.is_empty())) {
        return Err(format!("parameter `{name}' given twice"));
    }
    *slot = Some(v.to_string());
    Ok(())
}

/// One `iomem=` entry: `IOMEM_START,NUM_PAGES[@GFN]`, all hexadecimal page numbers (xl reads them
/// with `sscanf("%"SCNx64",%"SCNx64"@%"SCNx64)`, which also takes a `0x` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IomemRange {
    /// First host frame.
    pub start: u64,
    /// Number of pages.
    pub pages: u64,
    /// First guest frame; `None` means the same as `start` (libxl's default).
    pub gfn: Option<u64>,
}

fn hex(s: &str) -> Option<u64> {
    let v = strtol(s.trim_start(), 16).ok()?;
    u64::try_from(v).ok()
}

/// Parses an `iomem=` entry; the error is xl's "Invalid argument parsing iomem".
pub fn parse_iomem(s: &str) -> Result<IomemRange, String> {
    let bad = || format!("Invalid argument parsing iomem: {s}");
    let (start, rest) = s.split_once(',').ok_or_else(bad)?;
    let (pages, gfn) = match rest.split_once('@') {
        Some((p, g)) => (p, Some(hex(g).ok_or_else(bad)?)),
        None => (rest, None),
    };
    Ok(IomemRange { start: hex(start).ok_or_else(bad)?, pages: hex(pages).ok_or_else(bad)?, gfn })
}
