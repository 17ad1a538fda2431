//! xl's command table: names, abbreviations and help texts.
//!
//! # Rules (Xen 4.17: `tools/xl/xl_cmdtable.c`, `help` and `main` in `tools/xl/xl.c`)
//! - A command may be abbreviated to any prefix that names exactly one command of xl's table;
//!   an exact name wins even when it also prefixes another (`sched-credit`). `help` is not in
//!   the table and cannot be abbreviated. Anything else is "command not implemented".
//! - `xl help COMMAND` (and `-h`/`--help` after any command) prints
//!   `Usage: xl [-vtT<f><N>] NAME USAGE`, a blank line, `DESCRIPTION.`, a blank line and, when
//!   the command has one, `Options:`, a blank line and its option text; `f` appears for commands
//!   that modify a domain, `N` for those with a dry-run mode. The texts below are xl's.
//! - `xl help` (and `xl` alone) prints `Usage xl [-vfNtT] <subcommand> [args]`, then one line per
//!   command: a space, the name padded to 19 columns, a space, the description.
//!
//! # Departures
//! The abbreviation rule uses xl's whole table (the arm64 one: no save/restore/migrate/remus,
//! no psr-*), so an abbreviation means in Xenolith what it means in xl; a command xl has and
//! Xenolith does not is "command not implemented". `xl help` lists only the commands Xenolith
//! implements.

use alloc::format;
use alloc::string::String;

/// One command Xenolith implements, with xl's help texts (`struct cmd_spec` in `tools/xl/xl.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// The command's name.
    pub name: &'static str,
    /// Whether it has a dry-run mode (`N` in the usage line).
    pub can_dryrun: bool,
    /// Whether it modifies a domain (`f` in the usage line).
    pub modifies: bool,
    /// One-line description (printed with a full stop after it).
    pub description: &'static str,
    /// Arguments, as the usage line shows them.
    pub usage: &'static str,
    /// Option text, if the command has one.
    pub options: Option<&'static str>,
}

const fn spec(
    name: &'static str,
    can_dryrun: bool,
    modifies: bool,
    description: &'static str,
    usage: &'static str,
    options: Option<&'static str>,
) -> CommandSpec {
    CommandSpec { name, can_dryrun, modifies, description, usage, options }
}

/// The commands Xenolith implements, in xl's table order (`tools/xl/xl_cmdtable.c`).
pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "create",
        true,
        true,
        "Create a domain from config file <filename>",
        "<ConfigFile> [options] [vars]",
        Some(
            "-c                      Connect to the console after the domain is created.\n\
             -d                      Enable debug messages.\n\
             -e                      Do not wait in the background for the death of the domain.\n\
             -F                      Run in foreground until death of the domain.\n\
             -f FILE, --defconfig=FILE\n                     Use the given configuration file.\n\
             -h                      Print this help.\n\
             -n, --dryrun            Dry run - prints the resulting configuration\n\
             \x20                        (deprecated in favour of global -N option).\n\
             -p                      Leave the domain paused after it is created.\n\
             -q, --quiet             Quiet.\n\
             -V, --vncviewer         Connect to the VNC display after the domain is created.\n\
             -A, --vncviewer-autopass\n\
             \x20                       Pass VNC password to viewer via stdin.\n\
             --ignore-global-affinity-masks Ignore global masks in xl.conf.",
        ),
    ),
    spec(
        "list",
        false,
        false,
        "List information about all/some domains",
        "[options] [Domain]\n",
        Some(
            "-l, --long              Output all VM details\n\
             -v, --verbose           Prints out UUIDs and security context\n\
             -Z, --context           Prints out security context\n\
             -c, --cpupool           Prints the cpupool the domain is in\n\
             -n, --numa              Prints out NUMA node affinity",
        ),
    ),
    spec(
        "destroy",
        false,
        true,
        "Terminate a domain immediately",
        "[options] <Domain>\n",
        Some(
            "-f                      Permit destroying domain 0, which will only succeed\n\
             \x20                       when run from disaggregated toolstack domain with a\n\
             \x20                       hardware domain distinct from domain 0.",
        ),
    ),
    spec(
        "shutdown",
        false,
        true,
        "Issue a shutdown signal to a domain",
        "[options] <-a|Domain>",
        Some(
            "-a, --all               Shutdown all guest domains.\n\
             -h                      Print this help.\n\
             -F                      Fallback to ACPI power event for HVM guests with\n\
             \x20                       no PV drivers.\n\
             -w, --wait              Wait for guest(s) to shutdown.\n",
        ),
    ),
    spec(
        "reboot",
        false,
        true,
        "Issue a reboot signal to a domain",
        "[options] <-a|Domain>",
        Some(
            "-a, --all               Shutdown all guest domains.\n\
             -h                      Print this help.\n\
             -F                      Fallback to ACPI reset event for HVM guests with\n\
             \x20                       no PV drivers.\n\
             -w, --wait              Wait for guest(s) to reboot.\n",
        ),
    ),
    spec("pause", false, true, "Pause execution of a domain", "<Domain>", None),
    spec("unpause", false, true, "Unpause a paused domain", "<Domain>", None),
    spec(
        "console",
        false,
        false,
        "Attach to domain's console",
        "[options] <Domain>\n\
         -t <type>       console type, pv , serial or vuart\n\
         -n <number>     console number",
        None,
    ),
    spec(
        "mem-set",
        false,
        true,
        "Set the current memory usage for a domain",
        "<Domain> <MemMB['b'[bytes]|'k'[KB]|'m'[MB]|'g'[GB]|'t'[TB]]>",
        None,
    ),
    spec("vcpu-list", false, false, "List the VCPUs for all/some domains", "[Domain, ...]", None),
    spec(
        "vcpu-pin",
        true,
        true,
        "Set which CPUs a VCPU can use",
        "[option] <Domain> <VCPU|all> <Hard affinity|-|all> <Soft affinity|-|all>",
        Some(
            "-f, --force        undo an override pinning done by the kernel\n\
             --ignore-global-affinity-masks Ignore global masks in xl.conf",
        ),
    ),
    spec(
        "info",
        false,
        false,
        "Get information about Xen host",
        "-n, --numa         List host NUMA topology information",
        None,
    ),
    spec(
        "sched-credit2",
        false,
        true,
        "Get/set credit2 scheduler parameters",
        "[-d <Domain> [-w[=WEIGHT]]] [-p CPUPOOL]",
        Some(
            "-d DOMAIN, --domain=DOMAIN     Domain to modify\n\
             -w WEIGHT, --weight=WEIGHT     Weight (int)\n\
             -c CAP,    --cap=CAP           Cap (int)\n\
             -s         --schedparam        Query / modify scheduler parameters\n\
             -r RLIMIT, --ratelimit_us=RLIMIT Set the scheduling rate limit, in microseconds\n\
             -p CPUPOOL, --cpupool=CPUPOOL  Restrict output to CPUPOOL",
        ),
    ),
    spec(
        "dmesg",
        false,
        false,
        "Read and/or clear dmesg buffer",
        "[-c]",
        Some("  -c                        Clear dmesg buffer as well as printing it"),
    ),
    spec(
        "network-attach",
        true,
        true,
        "Create a new virtual network device",
        "<Domain> [type=<type>] [mac=<mac>] [bridge=<bridge>] \
         [ip=<ip>] [script=<script>] [backend=<BackDomain>] [vifname=<name>] \
         [rate=<rate>] [model=<model>] [accel=<accel>] [mtu=<mtu>]",
        None,
    ),
    spec(
        "network-detach",
        false,
        true,
        "Destroy a domain's virtual network device",
        "<Domain> <DevId|mac>",
        None,
    ),
    spec("uptime", false, false, "Print uptime for all/some domains", "[-s] [Domain]", None),
];

/// Every command name in xl 4.17's table as built for arm64 (`tools/xl/xl_cmdtable.c`; the
/// entries under `#ifndef LIBXL_HAVE_NO_SUSPEND_RESUME`, which `libxl.h` defines on Arm, and
/// the x86-only `psr-*` entries are absent), in table order. Abbreviations are resolved
/// against this list.
pub const XL_COMMANDS: &[&str] = &[
    "create",
    "config-update",
    "list",
    "destroy",
    "shutdown",
    "reboot",
    "pci-attach",
    "pci-detach",
    "pci-list",
    "pci-assignable-add",
    "pci-assignable-remove",
    "pci-assignable-list",
    "pause",
    "unpause",
    "console",
    "vncviewer",
    "dump-core",
    "cd-insert",
    "cd-eject",
    "mem-max",
    "mem-set",
    "button-press",
    "vcpu-list",
    "vcpu-pin",
    "vcpu-set",
    "vm-list",
    "info",
    "sharing",
    "sched-credit",
    "sched-credit2",
    "sched-rtds",
    "domid",
    "domname",
    "rename",
    "trigger",
    "sysrq",
    "debug-keys",
    "set-parameters",
    "dmesg",
    "top",
    "network-attach",
    "network-list",
    "network-detach",
    "channel-list",
    "block-attach",
    "block-list",
    "block-detach",
    "vtpm-attach",
    "vtpm-list",
    "vtpm-detach",
    "vkb-attach",
    "vkb-list",
    "vkb-detach",
    "vdispl-attach",
    "vdispl-list",
    "vdispl-detach",
    "vsnd-attach",
    "vsnd-list",
    "vsnd-detach",
    "uptime",
    "claims",
    "cpupool-create",
    "cpupool-list",
    "cpupool-destroy",
    "cpupool-rename",
    "cpupool-cpu-add",
    "cpupool-cpu-remove",
    "cpupool-migrate",
    "cpupool-numa-split",
    "getenforce",
    "setenforce",
    "loadpolicy",
    "devd",
    "usbctrl-attach",
    "usbctrl-detach",
    "usbdev-attach",
    "usbdev-detach",
    "usb-list",
    "qemu-monitor-command",
];

/// What a (possibly abbreviated) command word names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A command Xenolith implements.
    Supported(&'static CommandSpec),
    /// A command of xl's that Xenolith does not implement.
    NotImplemented(&'static str),
    /// No command, or an ambiguous abbreviation.
    Unknown,
}

/// Resolves `word` as xl's `cmdtable_lookup` does.
pub fn lookup(word: &str) -> Lookup {
    let mut found = None;
    let mut count = 0;
    for name in XL_COMMANDS {
        if name.starts_with(word) {
            if name.len() == word.len() {
                found = Some(*name);
                count = 1;
                break;
            }
            found = Some(*name);
            count += 1;
        }
    }
    match found {
        Some(name) if count == 1 => match COMMANDS.iter().find(|c| c.name == name) {
            Some(spec) => Lookup::Supported(spec),
            None => Lookup::NotImplemented(name),
        },
        _ => Lookup::Unknown,
    }
}

/// The help for one command, as `help(name)` in `tools/xl/xl.c` prints it.
pub fn command_help(spec: &CommandSpec) -> String {
    let mut text = format!(
        "Usage: xl [-vtT{}{}] {} {}\n\n{}.\n\n",
        if spec.modifies { "f" } else { "" },
        if spec.can_dryrun { "N" } else { "" },
        spec.name,
        spec.usage,
        spec.description
    );
    if let Some(options) = spec.options {
        text.push_str("Options:\n\n");
        text.push_str(options);
        text.push('\n');
    }
    text
}

/// What `xl help [WORD]` prints: the list of commands, or one command's help.
pub fn help(word: Option<&str>) -> String {
    match word {
        None | Some("help") => {
            let mut text = String::from(
                "Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n",
            );
            for c in COMMANDS {
                text.push_str(&format!(" {:<19} ", c.name));
                if c.name.len() > 19 {
                    text.push_str(&format!("\n {:<19} ", ""));
                }
                text.push_str(c.description);
                text.push('\n');
            }
            text
        }
        Some(word) => match lookup(word) {
            Lookup::Supported(spec) => command_help(spec),
            Lookup::NotImplemented(_) | Lookup::Unknown => {
                format!("command \"{word}\" not implemented\n")
            }
        },
    }
}

/// The table entry for `name` (which must be one of [`COMMANDS`]).
pub(crate) fn spec_of(name: &str) -> &'static CommandSpec {
    COMMANDS.iter().find(|c| c.name == name).unwrap_or(&COMMANDS[0])
}
