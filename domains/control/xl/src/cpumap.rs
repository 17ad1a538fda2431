//! Sets of physical CPUs: libxl's bitmaps, xl's CPU-range syntax and its way of printing them.
//!
//! # Rules (Xen 4.17)
//! - A [`CpuMap`] is a libxl bitmap: bytes, CPU `n` in bit `n % 8` of byte `n / 8`
//!   (`tools/libs/light/libxl_utils.c`); setting a CPU beyond its size does nothing.
//! - [`parse_cpurange`] reads `vcpu-pin`'s affinity words (`parse_cpurange`,
//!   `update_cpumap_range` and `parse_range` in `tools/xl/xl_parse.c`): comma-separated items
//!   applied left to right, each `all`, `N` or `N-M` (C's `strtoul`, nothing after), with an
//!   optional leading `^` that removes instead of adds and an optional `node:`/`nodes:` that
//!   names NUMA nodes instead of CPUs. `^all` is refused ("Can't combine "^" and "all"."),
//!   anything else malformed is ``Invalid pcpu range: ITEM.``.
//! - [`print_bitmap`] prints a map as `print_bitmap` in `tools/xl/xl_utils.c` does: `all` when
//!   every CPU is set, `none` when none is, else ranges `0-1,3`.
//!
//! # Departures
//! Xenolith hosts have one NUMA node, node 0, holding every CPU (`nr_nodes` is 1): `node:0`
//! means every CPU and other nodes have none, which is what libxl's `libxl_node_to_cpumap`
//! gives on such a host. Maps parsed from a command line hold [`MAX_CPUS`] CPUs; the caller
//! trims them to the host's CPUs.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::cnum::strtoul;

/// CPUs a map parsed from a command line can hold: xlcfg's largest CPU number plus one.
pub const MAX_CPUS: u32 = xenolith_xlcfg::devices::MAX_CPU + 1;

/// A set of physical CPUs, stored as libxl stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuMap {
    bytes: Vec<u8>,
}

impl CpuMap {
    /// An empty map with room for `nr_cpus` CPUs (rounded up to whole bytes, as libxl does).
    pub fn new(nr_cpus: u32) -> Self {
        Self { bytes: vec![0; nr_cpus.div_ceil(8) as usize] }
    }

    /// A map of `nr_cpus` CPUs holding `cpus`.
    pub fn from_cpus(nr_cpus: u32, cpus: &[u32]) -> Self {
        let mut map = Self::new(nr_cpus);
        for &cpu in cpus {
            map.set(cpu);
        }
        map
    }

    /// A map from libxl's bytes (what `xenctl_bitmap` carries).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self { bytes: bytes.to_vec() }
    }

    /// The bytes, as libxl and `xenctl_bitmap` hold them.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many CPUs the map has room for.
    pub fn size(&self) -> u32 {
        (self.bytes.len() * 8) as u32
    }

    /// Adds `cpu` (nothing if it is beyond the map's size).
    pub fn set(&mut self, cpu: u32) {
        if let Some(b) = self.bytes.get_mut((cpu / 8) as usize) {
            *b |= 1 << (cpu % 8);
        }
    }

    /// Removes `cpu`.
    pub fn reset(&mut self, cpu: u32) {
        if let Some(b) = self.bytes.get_mut((cpu / 8) as usize) {
            *b &= !(1 << (cpu % 8));
        }
    }

    /// Whether `cpu` is in the map.
    pub fn test(&self, cpu: u32) -> bool {
        self.bytes.get((cpu / 8) as usize).is_some_and(|b| b & (1 << (cpu % 8)) != 0)
    }

    /// Sets every bit (`libxl_bitmap_set_any`).
    pub fn set_any(&mut self) {
        self.bytes.iter_mut().for_each(|b| *b = 0xff);
    }

    /// Whether no CPU is in the map.
    pub fn is_empty(&self) -> bool {
        self.bytes.iter().all(|b| *b == 0)
    }

    /// The CPUs in the map, in order.
    pub fn cpus(&self) -> Vec<u32> {
        (0..self.size()).filter(|c| self.test(*c)).collect()
    }

    /// The map cut to the first `nr_cpus` CPUs (a host's CPUs), in a map of that size.
    pub fn trimmed(&self, nr_cpus: u32) -> Self {
        let mut map = Self::new(nr_cpus);
        for cpu in (0..nr_cpus).filter(|c| self.test(*c)) {
            map.set(cpu);
        }
        map
    }
}

/// `parse_range`: `N` or `N-M` with C's `strtoul`, `M` not below `N`, nothing after; `None`
/// when malformed (also when a bound is `ULONG_MAX`).
fn parse_range(text: &str) -> Option<(u64, u64)> {
    let (a, used) = strtoul(text);
    if used == 0 || a == u64::MAX {
        return None;
    }
    let rest = &text[used..];
    let (b, rest) = match rest.strip_prefix('-') {
        Some(after) => {
            let (b, used) = strtoul(after);
            if used == 0 || b == u64::MAX || b < a {
                return None;
            }
            (b, &after[used..])
        }
        None => (a, rest),
    };
    rest.is_empty().then_some((a, b))
}

/// Applies one item of a CPU list to `map`.
fn update_range(item: &str, map: &mut CpuMap) -> Result<(), String> {
    let (remove, item) = match item.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, item),
    };
    let (nodes, item) = match item.strip_prefix("node:").or_else(|| item.strip_prefix("nodes:")) {
        Some(rest) => (true, rest),
        None => (false, item),
    };
    if item == "all" {
        if remove {
            return Err(String::from("Can't combine \"^\" and \"all\".\n"));
        }
        map.set_any();
        return Ok(());
    }
    let (first, last) =
        parse_range(item).ok_or_else(|| format!("Invalid pcpu range: {item}.\n"))?;
    let size = u64::from(map.size());
    if nodes {
        // Node 0 holds every CPU; no other node has any.
        if first == 0 {
            for cpu in 0..map.size() {
                if remove {
                    map.reset(cpu);
                } else {
                    map.set(cpu);
                }
            }
        }
        return Ok(());
    }
    for cpu in first..=last.min(size.saturating_sub(1)) {
        if remove {
            map.reset(cpu as u32);
        } else {
            map.set(cpu as u32);
        }
    }
    Ok(())
}

/// Parses an affinity word of `vcpu-pin` (`parse_cpurange` in `tools/xl/xl_parse.c`) into a map
/// of [`MAX_CPUS`] CPUs; the error is xl's message, newline included.
pub fn parse_cpurange(text: &str) -> Result<CpuMap, String> {
    let mut map = CpuMap::new(MAX_CPUS);
    // strtok_r: empty items between commas are skipped.
    for item in text.split(',').filter(|i| !i.is_empty()) {
        update_range(item, &mut map)?;
    }
    Ok(map)
}

/// Prints the first `nr_cpus` CPUs of `map` as `print_bitmap` in `tools/xl/xl_utils.c` does.
pub fn print_bitmap(map: &CpuMap, nr_cpus: u32) -> String {
    let mut out = String::new();
    // Runs of set CPUs: (first, last).
    let mut runs: Vec<(u32, u32)> = Vec::new();
    let mut start = None;
    for cpu in 0..nr_cpus {
        match (map.test(cpu), start) {
            (true, None) => start = Some(cpu),
            (false, Some(s)) => {
                runs.push((s, cpu - 1));
                start = None;
            }
            _ => {}
        }
    }
    let open = start.map(|s| (s, nr_cpus - 1));
    if runs.is_empty() && open == Some((0, nr_cpus.saturating_sub(1))) {
        return String::from("all");
    }
    runs.extend(open);
    if runs.is_empty() {
        return String::from("none");
    }
    for (i, (first, last)) in runs.iter().enumerate() {
        let _ = write!(out, "{}{first}", if i > 0 { "," } else { "" });
        if last > first {
            let _ = write!(out, "-{last}");
        }
    }
    out
}
