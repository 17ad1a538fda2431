//! A typed line into a [`Command`], with xl's usage errors.
//!
//! # Rules (Xen 4.17: `main` in `tools/xl/xl.c`; the `main_*` functions of `tools/xl/`)
//! - A leading `xl` is optional. xl's global options before the command (`-v`, `-f`, `-t`,
//!   `-T`) are accepted and change nothing here; `-N` (dry run) is not supported; any other is
//!   "unknown global option". No command prints the list of commands (status 1).
//! - Each command's options and argument count are xl's; domain arguments stay text until
//!   [`crate::run`] resolves them (see [`crate::resolve`]).
//! - Numbers are read as xl reads them: `sched-credit2`'s values with C's `strtol` (text after
//!   the digits ignored, no digits is 0), `vcpu-pin`'s vCPU with `strtol` (a negative value or
//!   no digits must be `all`), `mem-set`'s size with `parse_mem_size_kb` (`tools/xl/xl_parse.c`:
//!   `strtoll` then at most one suffix letter, any case: none or `m` MiB, `k` KiB, `g` GiB, `t`
//!   TiB, `b` bytes rounded down to KiB), `network-detach`'s device id with `atoi`.
//!
//! # Departures
//! - Errors xl reports only after looking up the domain (a bad vCPU, CPU list or memory size)
//!   are reported here first.
//! - Options xl has and Xenolith does not implement are refused by name: `list -v/-Z/-c/-n`,
//!   `info -n`, `create -n/-V/-A`, and the global `-N`. `create -d/-e/-F/-i` are accepted and
//!   change nothing (Xenolith has no xl daemon and no global affinity masks).
//! - `mem-set` refuses every negative size (xl refuses only -1 and passes the others on as huge
//!   unsigned numbers).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xenolith_xlcfg::devices::{parse_vif, Vif};

use crate::cnum::{atoi, strtol, strtoll};
use crate::commands::{command_help, help, lookup, spec_of, Lookup};
use crate::cpumap::{parse_cpurange, CpuMap};
use crate::error::XlError;
use crate::getopt::{long, split_words, walk, LongOption, Options};
use crate::toolstack::{ConsoleType, NicRef};

/// Which domains `shutdown`/`reboot` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-a`: every domain but domain 0 and those marked `never_stop`.
    All,
    /// One domain, by name or id.
    Domain(String),
}

/// How long `shutdown`/`reboot` wait (`-w` counted, as in `main_shutdown_or_reboot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// No `-w`.
    No,
    /// `-w`: until the domain has shut down or is gone.
    ShutdownOrDeath,
    /// `-w -w`: until the domain is gone.
    Death,
}

/// `shutdown` or `reboot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Power {
    /// The domains addressed.
    pub target: Target,
    /// `-w`.
    pub wait: Wait,
    /// `-F`: fall back to an ACPI event for guests without PV drivers.
    pub fallback: bool,
}

/// `vcpu-pin`'s vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuSelect {
    /// `all`.
    All,
    /// One vCPU (as C's `strtol` read it: 0 or more).
    One(i64),
}

/// `create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    /// The configuration file.
    pub config_file: String,
    /// `KEY=VALUE` words, each added as a line after the file.
    pub extra: Vec<String>,
    /// `-c`: connect to the console once created.
    pub console: bool,
    /// `-p`: leave the domain paused.
    pub paused: bool,
    /// `-q`: do not print "Parsing config from".
    pub quiet: bool,
}

/// `sched-credit2`'s options (`main_sched_credit2` in `tools/xl/xl_sched.c`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchedCredit2 {
    /// `-d`.
    pub domain: Option<String>,
    /// `-w`, as `strtol` read it.
    pub weight: Option<i32>,
    /// `-c`, as `strtol` read it.
    pub cap: Option<i32>,
    /// `-s`: the pool's parameters instead of domains'.
    pub schedparam: bool,
    /// `-r`, as `strtol` read it.
    pub ratelimit: Option<i32>,
    /// `-p`.
    pub cpupool: Option<String>,
}

/// One xl command, with its options read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `create <ConfigFile> [-c] [-p] [-q] [KEY=VALUE...]`.
    Create(Create),
    /// `list [-l] [Domain]`.
    List {
        /// `-l`: the configuration as JSON.
        long: bool,
        /// One domain only.
        domain: Option<String>,
    },
    /// `destroy [-f] <Domain>`.
    Destroy {
        /// The domain.
        domain: String,
        /// `-f`: domain 0 too.
        force: bool,
    },
    /// `shutdown [-a] [-w] [-F] [Domain]`.
    Shutdown(Power),
    /// `reboot [-a] [-w] [-F] [Domain]`.
    Reboot(Power),
    /// `pause <Domain>`.
    Pause {
        /// The domain.
        domain: String,
    },
    /// `unpause <Domain>`.
    Unpause {
        /// The domain.
        domain: String,
    },
    /// `console [-t type] [-n number] <Domain>`.
    Console {
        /// The domain.
        domain: String,
        /// `-t`.
        console: Option<ConsoleType>,
        /// `-n` (`atoi`).
        number: i32,
    },
    /// `vcpu-list [Domain...]`.
    VcpuList {
        /// The domains; none is all.
        domains: Vec<String>,
    },
    /// `vcpu-pin [-f] [-i] <Domain> <VCPU|all> <Hard|-|all> [Soft|-|all]`.
    VcpuPin {
        /// The domain.
        domain: String,
        /// The vCPU.
        vcpu: VcpuSelect,
        /// Hard affinity; `None` (`-`) leaves it alone.
        hard: Option<CpuMap>,
        /// Soft affinity; `None` (`-` or absent) leaves it alone.
        soft: Option<CpuMap>,
        /// `-f`.
        force: bool,
        /// `-i`: do not check the hard affinity against the host's pCPUs.
        ignore_masks: bool,
    },
    /// `sched-credit2 [-d Domain [-w W] [-c C]] [-s [-r R]] [-p Pool]`.
    SchedCredit2(SchedCredit2),
    /// `info [NAME]`.
    Info {
        /// Print only the lines whose name starts with this, values only.
        filter: Option<String>,
    },
    /// `dmesg [-c]`.
    Dmesg {
        /// `-c`: clear the ring after reading it.
        clear: bool,
    },
    /// `uptime [-s] [Domain...]`.
    Uptime {
        /// `-s`: the short form.
        short: bool,
        /// The domains; none is all.
        domains: Vec<String>,
    },
    /// `mem-set <Domain> <Mem>`.
    MemSet {
        /// The domain.
        domain: String,
        /// The size as typed (xl repeats it in its error message).
        memory: String,
        /// The size, KiB.
        memory_kb: u64,
    },
    /// `network-attach <Domain> [KEY=VALUE...]`.
    NetworkAttach {
        /// The domain.
        domain: String,
        /// The device's options.
        vif: Vif,
    },
    /// `network-detach <Domain> <DevId|mac>`.
    NetworkDetach {
        /// The domain.
        domain: String,
        /// The device.
        device: NicRef,
        /// The device as typed.
        text: String,
    },
    /// `help [COMMAND]`, or `-h`/`--help` after a command: print help.
    Help {
        /// The command, if any.
        command: Option<String>,
    },
}

/// Parses one line typed by a person (see the module documentation).
pub fn parse(line: &str) -> Result<Command, XlError> {
    parse_words(&split_words(line)?)
}

/// Parses a command already split into words (the first may be `xl`).
pub fn parse_words(words: &[String]) -> Result<Command, XlError> {
    let mut words = words;
    if words.first().is_some_and(|w| w == "xl") {
        words = &words[1..];
    }
    // Global options: getopt "+vftTN", which stops at the first word that is not an option.
    while let Some(word) = words.first().filter(|w| w.starts_with('-') && w.len() > 1) {
        if word == "--" {
            words = &words[1..];
            break;
        }
        for c in word[1..].chars() {
            match c {
                'v' | 'f' | 't' | 'T' => {}
                'N' => return Err(not_in_xenolith("xl's global option -N (dry run)")),
                _ => return Err(XlError::failure("unknown global option\n")),
            }
        }
        words = &words[1..];
    }
    let Some((name, rest)) = words.split_first() else {
        return Err(XlError::failure(help(None)));
    };
    if name == "help" {
        return Ok(Command::Help { command: rest.first().cloned() });
    }
    let spec = match lookup(name) {
        Lookup::Supported(spec) => spec,
        Lookup::NotImplemented(_) | Lookup::Unknown => {
            return Err(XlError::failure("command not implemented\n"))
        }
    };
    let command = spec.name;
    let parsed = match command {
        "create" => create(rest),
        "list" => list(rest),
        "destroy" => destroy(rest),
        "shutdown" | "reboot" => power(command, rest),
        "pause" | "unpause" => pause(command, rest),
        "console" => console(rest),
        "vcpu-list" => vcpu_list(rest),
        "vcpu-pin" => vcpu_pin(rest),
        "sched-credit2" => sched_credit2(rest),
        "info" => info(rest),
        "dmesg" => dmesg(rest),
        "uptime" => uptime(rest),
        "mem-set" => mem_set(rest),
        "network-attach" => network_attach(rest),
        _ => network_detach(rest),
    }?;
    Ok(parsed.unwrap_or(Command::Help { command: Some(command.to_string()) }))
}

/// A command, or `None` when `-h` asked for its help.
type Parsed = Result<Option<Command>, XlError>;

fn not_in_xenolith(what: &str) -> XlError {
    XlError::failure(format!("{what} is not supported by Xenolith.\n"))
}

fn options(
    command: &'static str,
    short: &'static str,
    long: &'static [LongOption],
    required: usize,
) -> Options {
    Options { command, short, long, required }
}

fn create(words: &[String]) -> Parsed {
    const LONG: &[LongOption] = &[
        long("defconfig", true, 'f'),
        long("dryrun", false, 'n'),
        long("ignore-global-affinity-masks", false, 'i'),
        long("quiet", false, 'q'),
        long("vncviewer", false, 'V'),
        long("vncviewer-autopass", false, 'A'),
    ];
    let mut config_file = None;
    let mut words = words;
    // main_create: a first word that is neither an option nor KEY=VALUE is the file.
    if let Some(first) = words.first().filter(|w| !w.starts_with('-') && !w.contains('=')) {
        config_file = Some(first.clone());
        words = &words[1..];
    }
    let (mut console, mut paused, mut quiet) = (false, false, false);
    let walked = walk(&options("create", "AFVcdef:inpq", LONG, 0), words, |c, value| {
        match c {
            'c' => console = true,
            'p' => paused = true,
            'q' => quiet = true,
            'f' => config_file = value,
            'n' => return Err(not_in_xenolith("xl create -n (dry run)")),
            'V' | 'A' => return Err(not_in_xenolith("xl create's VNC viewer (-V, -A)")),
            _ => {}
        }
        Ok(())
    })?;
    let Some(arguments) = walked else { return Ok(None) };
    let mut extra = Vec::new();
    for a in arguments {
        if a.contains('=') {
            extra.push(a);
        } else if config_file.is_none() {
            config_file = Some(a);
        } else {
            return Err(XlError::usage(command_help(spec_of("create"))));
        }
    }
    let Some(config_file) = config_file else {
        return Err(XlError {
            status: 6,
            text: String::from("Config file not specified and none in save file\n"),
        });
    };
    Ok(Some(Command::Create(Create { config_file, extra, console, paused, quiet })))
}

fn list(words: &[String]) -> Parsed {
    const LONG: &[LongOption] = &[
        long("long", false, 'l'),
        long("verbose", false, 'v'),
        long("context", false, 'Z'),
        long("cpupool", false, 'c'),
        long("numa", false, 'n'),
    ];
    let mut long_form = false;
    let walked = walk(&options("list", "lvZcn", LONG, 0), words, |c, _| {
        if c == 'l' {
            long_form = true;
            return Ok(());
        }
        Err(not_in_xenolith(&format!("xl list -{c}")))
    })?;
    let Some(arguments) = walked else { return Ok(None) };
    match arguments.as_slice() {
        [] => Ok(Some(Command::List { long: long_form, domain: None })),
        [one] => Ok(Some(Command::List { long: long_form, domain: Some(one.clone()) })),
        _ => Err(XlError::failure(command_help(spec_of("list")))),
    }
}

fn destroy(words: &[String]) -> Parsed {
    let mut force = false;
    let walked = walk(&options("destroy", "f", &[], 1), words, |c, _| {
        force |= c == 'f';
        Ok(())
    })?;
    Ok(walked.map(|a| Command::Destroy { domain: a[0].clone(), force }))
}

fn power(command: &'static str, words: &[String]) -> Parsed {
    const LONG: &[LongOption] = &[long("all", false, 'a'), long("wait", false, 'w')];
    let (mut all, mut waits, mut fallback) = (false, 0, false);
    let walked = walk(&options(command, "awF", LONG, 0), words, |c, _| {
        match c {
            'a' => all = true,
            'w' => waits += 1,
            _ => fallback = true,
        }
        Ok(())
    })?;
    let Some(arguments) = walked else { return Ok(None) };
    let target = match (all, arguments.first()) {
        (true, _) => Target::All,
        (false, Some(d)) => Target::Domain(d.clone()),
        (false, None) => {
            return Err(XlError::failure("You must specify -a or a domain id.\n\n"));
        }
    };
    let wait = match waits {
        0 => Wait::No,
        1 => Wait::ShutdownOrDeath,
        _ => Wait::Death,
    };
    let p = Power { target, wait, fallback };
    Ok(Some(if command == "reboot" { Command::Reboot(p) } else { Command::Shutdown(p) }))
}

fn pause(command: &'static str, words: &[String]) -> Parsed {
    let walked = walk(&options(command, "", &[], 1), words, |_, _| Ok(()))?;
    Ok(walked.map(|a| {
        let domain = a[0].clone();
        if command == "pause" {
            Command::Pause { domain }
        } else {
            Command::Unpause { domain }
        }
    }))
}

fn console(words: &[String]) -> Parsed {
    let (mut console, mut number) = (None, 0);
    let walked = walk(&options("console", "n:t:", &[], 1), words, |c, value| {
        let value = value.unwrap_or_default();
        if c == 'n' {
            number = atoi(&value);
            return Ok(());
        }
        console = Some(match value.as_str() {
            "pv" => ConsoleType::Pv,
            "serial" => ConsoleType::Serial,
            "vuart" => ConsoleType::Vuart,
            _ => return Err(XlError::failure("console type supported are: pv, serial, vuart\n")),
        });
        Ok(())
    })?;
    Ok(walked.map(|a| Command::Console { domain: a[0].clone(), console, number }))
}

fn vcpu_list(words: &[String]) -> Parsed {
    let walked = walk(&options("vcpu-list", "", &[], 0), words, |_, _| Ok(()))?;
    Ok(walked.map(|domains| Command::VcpuList { domains }))
}

fn vcpu_pin(words: &[String]) -> Parsed {
    const LONG: &[LongOption] =
        &[long("force", false, 'f'), long("ignore-global-affinity-masks", false, 'i')];
    let (mut force, mut ignore_masks) = (false, false);
    let walked = walk(&options("vcpu-pin", "fi", LONG, 3), words, |c, _| {
        match c {
            'f' => force = true,
            _ => ignore_masks = true,
        }
        Ok(())
    })?;
    let Some(a) = walked else { return Ok(None) };
    let text = &a[1];
    let (number, used) = strtol(text);
    let vcpu = if used == 0 || number < 0 {
        if text != "all" {
            return Err(XlError::failure(format!("Error: Invalid argument {text} as VCPU.\n")));
        }
        if force {
            return Err(XlError::failure("Error: --force and 'all' as VCPU not allowed.\n"));
        }
        VcpuSelect::All
    } else {
        VcpuSelect::One(number)
    };
    let affinity = |word: Option<&String>| -> Result<Option<CpuMap>, XlError> {
        match word.map(String::as_str) {
            None | Some("-") => Ok(None),
            Some(w) => parse_cpurange(w).map(Some).map_err(XlError::failure),
        }
    };
    let hard = affinity(a.get(2))?;
    let soft = affinity(a.get(3))?;
    Ok(Some(Command::VcpuPin { domain: a[0].clone(), vcpu, hard, soft, force, ignore_masks }))
}

fn sched_credit2(words: &[String]) -> Parsed {
    const LONG: &[LongOption] = &[
        long("domain", true, 'd'),
        long("weight", true, 'w'),
        long("cap", true, 'c'),
        long("schedparam", false, 's'),
        long("ratelimit_us", true, 'r'),
        long("cpupool", true, 'p'),
    ];
    let mut s = SchedCredit2::default();
    // `int x = strtol(optarg, NULL, 10)`: the long's low 32 bits.
    let number = |v: &Option<String>| strtol(v.as_deref().unwrap_or("")).0 as i32;
    let walked = walk(&options("sched-credit2", "d:w:c:p:r:s", LONG, 0), words, |c, value| {
        match c {
            'd' => s.domain = value,
            'w' => s.weight = Some(number(&value)),
            'c' => s.cap = Some(number(&value)),
            's' => s.schedparam = true,
            'r' => s.ratelimit = Some(number(&value)),
            _ => s.cpupool = value,
        }
        Ok(())
    })?;
    if walked.is_none() {
        return Ok(None);
    }
    let domain_options = s.weight.is_some() || s.cap.is_some();
    if s.cpupool.is_some() && (s.domain.is_some() || domain_options) {
        return Err(XlError::failure("Specifying a cpupool is not allowed with other options.\n"));
    }
    if s.domain.is_none() && domain_options {
        return Err(XlError::failure("Must specify a domain.\n"));
    }
    Ok(Some(Command::SchedCredit2(s)))
}

fn info(words: &[String]) -> Parsed {
    const LONG: &[LongOption] = &[long("numa", false, 'n')];
    let walked = walk(&options("info", "n", LONG, 0), words, |_, _| {
        Err(not_in_xenolith("xl info -n (NUMA topology)"))
    })?;
    Ok(walked.map(|a| Command::Info { filter: a.first().cloned() }))
}

fn dmesg(words: &[String]) -> Parsed {
    let mut clear = false;
    const LONG: &[LongOption] = &[long("clear", false, 'c')];
    let walked = walk(&options("dmesg", "c", LONG, 0), words, |_, _| {
        clear = true;
        Ok(())
    })?;
    Ok(walked.map(|_| Command::Dmesg { clear }))
}

fn uptime(words: &[String]) -> Parsed {
    let mut short = false;
    let walked = walk(&options("uptime", "s", &[], 0), words, |_, _| {
        short = true;
        Ok(())
    })?;
    Ok(walked.map(|domains| Command::Uptime { short, domains }))
}

/// `parse_mem_size_kb` in `tools/xl/xl_parse.c`: KiB, or `None` where xl returns -1 (and, a
/// Xenolith departure, for any negative size).
pub fn parse_mem_size_kb(text: &str) -> Option<u64> {
    let (mut kb, used) = strtoll(text);
    let suffix = &text[used..];
    if suffix.len() > 1 {
        return None;
    }
    match suffix.bytes().next().map(|b| b.to_ascii_lowercase()) {
        Some(b't') => kb = kb.wrapping_shl(30),
        Some(b'g') => kb = kb.wrapping_shl(20),
        None | Some(b'm') => kb = kb.wrapping_shl(10),
        Some(b'k') => {}
        Some(b'b') => kb >>= 10,
        Some(_) => return None,
    }
    u64::try_from(kb).ok()
}

fn mem_set(words: &[String]) -> Parsed {
    let walked = walk(&options("mem-set", "", &[], 2), words, |_, _| Ok(()))?;
    let Some(a) = walked else { return Ok(None) };
    let memory = a[1].clone();
    let memory_kb = parse_mem_size_kb(&memory)
        .ok_or_else(|| XlError::failure(format!("invalid memory size: {memory}\n")))?;
    Ok(Some(Command::MemSet { domain: a[0].clone(), memory, memory_kb }))
}

fn network_attach(words: &[String]) -> Parsed {
    let walked = walk(&options("network-attach", "", &[], 1), words, |_, _| Ok(()))?;
    let Some(a) = walked else { return Ok(None) };
    let mut vif = Vif::default();
    // parse_nic_config, once per word: an unknown option fails the command.
    for word in &a[1..] {
        let (one, unknown) = parse_vif(word).map_err(|e| XlError::failure(format!("{e}\n")))?;
        if let Some(u) = unknown.first() {
            return Err(XlError::failure(format!("{u}\n")));
        }
        vif.options.extend(one.options);
    }
    Ok(Some(Command::NetworkAttach { domain: a[0].clone(), vif }))
}

fn network_detach(words: &[String]) -> Parsed {
    let walked = walk(&options("network-detach", "", &[], 2), words, |_, _| Ok(()))?;
    let Some(a) = walked else { return Ok(None) };
    let text = a[1].clone();
    let device =
        if text.contains(':') { NicRef::Mac(text.clone()) } else { NicRef::DevId(atoi(&text)) };
    Ok(Some(Command::NetworkDetach { domain: a[0].clone(), device, text }))
}
