//! The xl.cfg(5) text the bundle carries for each domain the control domain creates at run time
//! (`boot = false`): module `<name>.cfg`, which the control domain reads with `xenolith-xlcfg` as
//! `xl create <name>.cfg` reads a file.
//!
//! Why it exists: the control domain has no file system and never sees the manifest; all it can
//! build from is in the bundle, found by module name. So the host tool describes each such domain
//! in the format the control domain already reads, complete and self-contained: its image and
//! ramdisk are named by their module names in the same bundle, and nothing refers to the manifest,
//! to a file, or to the xl.cfg file the domain's settings may have come from (which is not
//! packed).
//!
//! # Format
//! One `key = value` a line (libxlu's grammar, Xen 4.17 `tools/libs/util/libxlu_cfg_y.y`) after a
//! comment line, in this order: `name`; `memory` (MiB) and `vcpus`; `kernel` and, if the domain
//! has one, `ramdisk`, each the module's name ([`DomainSource::module_name`]); `extra`, the whole
//! command line (`xl_parse.c` makes `extra` without `root` the whole line), written even when
//! empty; `cpu_weight` and `cap`; `cpus` and `cpus_soft` in xl's CPU-list syntax (`"0-3,6"`,
//! xl.cfg(5) `cpus=`), each only when it is not every CPU; `on_poweroff`, `on_reboot`, `on_crash`
//! in xl's words (`destroy`, `restart`, `preserve`). Numbers are decimal. Strings are in double
//! quotes; `"` and `\` are escaped, and so is each character libxlu has an escape for (`\n`,
//! `\t`, `\r`, `\a`, `\b`, `\f`, `\v`: `xlu__cfgl_dequote` in `tools/libs/util/libxlu_cfg.c`), so
//! a newline never ends the string early; any other character is written as it is (libxlu's
//! numeric escapes never yield a character, see `xenolith_xlcfg::syntax`).
//!
//! # Invariants
//! - `xenolith_xlcfg::parse_domain` reads [`Domain::xl_cfg`]'s text without an error or a warning,
//!   and every value it gives is the domain's (`images/tests/xl_cfg_modules.rs`).
//! - The text says everything the control domain needs only for a domain the manifest check let
//!   through with `boot = false`: such a domain has no capabilities and no preserved region
//!   (xl.cfg has no word for either), and its module names fit the control domain's lookup
//!   ([`ErrorKind::RunTimeSetting`], [`ErrorKind::RunTimeModuleName`]).

use std::fmt::Write as _;

use super::*;

impl Domain {
    /// The name of the module holding this domain's xl.cfg text: `<name>.cfg`.
    pub fn xl_cfg_module_name(&self) -> String {
        format!("{}.cfg", self.name)
    }

    /// This domain as an xl.cfg(5) text for the control domain (see the module doc).
    pub fn xl_cfg(&self) -> String {
        let mut text = format!(
            "# Domain `{}`, written by the host tool for the control domain's `xl create`: \
             kernel and ramdisk are boot bundle modules.\n",
            self.name
        );
        let mut line = |key: &str, value: String| {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{key} = {value}");
        };
        line("name", quoted(&self.name));
        line("memory", self.memory_mib.to_string());
        line("vcpus", self.vcpus.to_string());
        line("kernel", quoted(&self.source.module_name()));
        if let Some(ramdisk) = &self.ramdisk {
            line("ramdisk", quoted(&ramdisk.module_name()));
        }
        line("extra", quoted(&self.cmdline));
        line("cpu_weight", self.weight.to_string());
        line("cap", self.cap.to_string());
        for (key, mask) in [("cpus", self.hard_affinity), ("cpus_soft", self.soft_affinity)] {
            if mask != AFFINITY_ALL {
                line(key, quoted(&cpu_list(mask)));
            }
        }
        let actions = self.on_shutdown;
        line("on_poweroff", quoted(actions.poweroff.as_str()));
        line("on_reboot", quoted(actions.reboot.as_str()));
        line("on_crash", quoted(actions.crash.as_str()));
        if !self.vifs.is_empty() {
            let specs: Vec<String> = self.vifs.iter().map(|spec| quoted(spec)).collect();
            line("vif", format!("[{}]", specs.join(", ")));
        }
        text
    }
}

/// `value` as an xl.cfg string: in double quotes, with libxlu's escapes (see the module doc).
fn quoted(value: &str) -> String {
    let mut text = String::with_capacity(value.len() + 2);
    text.push('"');
    for c in value.chars() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\t' => "\\t",
            '\r' => "\\r",
            '\u{7}' => "\\a",
            '\u{8}' => "\\b",
            '\u{b}' => "\\v",
            '\u{c}' => "\\f",
            c => {
                text.push(c);
                continue;
            }
        };
        text.push_str(escape);
    }
    text.push('"');
    text
}

/// The pCPUs of affinity `mask` in xl's CPU-list syntax: runs as `first-last`, single CPUs as
/// their number, joined by commas (`0-3,6`).
fn cpu_list(mask: u64) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut cpu = 0;
    while cpu < AFFINITY_CPUS {
        if mask & (1 << cpu) == 0 {
            cpu += 1;
            continue;
        }
        let first = cpu;
        while cpu + 1 < AFFINITY_CPUS && mask & (1 << (cpu + 1)) != 0 {
            cpu += 1;
        }
        runs.push(if first == cpu { first.to_string() } else { format!("{first}-{cpu}") });
        cpu += 1;
    }
    runs.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_what_libxlu_unescapes() {
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("a b'c"), "\"a b'c\"");
        assert_eq!(quoted("\"\\\n\t\r\u{7}\u{8}\u{b}\u{c}é"), "\"\\\"\\\\\\n\\t\\r\\a\\b\\v\\fé\"");
    }

    #[test]
    fn cpu_lists_join_runs() {
        assert_eq!(cpu_list(1), "0");
        assert_eq!(cpu_list(0b1011), "0-1,3");
        assert_eq!(cpu_list(0b0100_1110), "1-3,6");
        assert_eq!(cpu_list(1 << 63), "63");
        assert_eq!(cpu_list(!1), "1-63");
        assert_eq!(cpu_list(1 | 1 << 62 | 1 << 63), "0,62-63");
    }
}
