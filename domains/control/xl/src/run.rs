//! Executing a [`Command`] through a [`Toolstack`], with xl's checks and messages.
//!
//! # Rules (Xen 4.17: the `main_*` functions of `tools/xl/`, and the libxl checks they rely
//! on, in `tools/libs/light/`)
//! - A domain argument is resolved as `find_domain` (`tools/xl/xl_utils.c`) and
//!   `libxl_domain_qualifier_to_domid` (`tools/libs/light/libxl_utils.c`) do: a word of digits
//!   only (even none) is an id, taken without checking that it exists; anything else is a name
//!   looked up in the domain list. A name nobody has is
//!   ``NAME is an invalid domain identifier (rc=-6)``.
//! - Output that xl prints to standard output, and its progress lines to standard error
//!   (`Shutting down domain N`, `Parsing config from FILE`), go to `out` in xl's order; a
//!   failure ends the command with an [`XlError`] holding xl's message, after whatever output
//!   xl would have printed before failing.
//! - libxl's own checks that need no hypercall are made here with libxl's messages: a domain
//!   name already in use (`create`), weight 1..=65535 and cap 0..=100 per vCPU
//!   (`sched_credit2_domain_set` in `libxl_sched.c`), the credit2 rate limit 0 or 100..=500000
//!   µs (`sched_ratelimit_check`; `XEN_SYSCTL_SCHED_RATELIMIT_MIN/MAX` in
//!   `xen/include/public/sysctl.h`), a missing domain for `destroy` (`libxl__destroy_domid`).
//!   libxl's log lines are printed as `libxl: error: MESSAGE`, without its file, line and
//!   function.
//! - Xenolith has one CPU pool, `Pool-0` (id 0), running the host's scheduler.
//!
//! # Departures
//! - Ids from `DOMID_FIRST_RESERVED` (0x7FF0, `xen/include/public/xen.h`) up, which name
//!   special domains (`DOMID_SELF`, ...), and numbers too big for an id are invalid
//!   identifiers (xl passes them on to Xen).
//! - Where xl prints a failure and still exits with success (`pause`/`unpause` failing, a
//!   vCPU-pin of `all` failing, `vcpu-list` without physinfo), this returns the failure.
//! - `shutdown -w` stops waiting after [`Toolstack::WAIT_POLLS`] looks (xl waits forever).
//! - `uptime` lists every domain in id order, domain 0 included, from [`Toolstack::uptime`]
//!   (xl reads domain 0's from `/proc/uptime` and the others' start times from xenstore).
//! - `vcpu-pin -f` sets the affinity as without `-f` (Xenolith never overrides a pinning).
//! - A failed `create` says `create failed (rc=N)` (xl leaves it to libxl's log).
//! - `console` returns once the console domain is asked to move the UART's input focus
//!   ([`Toolstack::console`]); xl runs the console client until its escape key (one Ctrl-],
//!   which here gives the focus back). A console that is not there fails at once, where
//!   xenconsole waits 5 s for it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use xenolith_abi::xen::hypercall::DOMID_FIRST_RESERVED;
use xenolith_xlcfg::parse_domain;

use crate::cnum::strtoul;
use crate::commands::help;
use crate::error::XlError;
use crate::format::{
    credit2_pool, info, list, list_long, sched_row, uptime_row, uptime_short_row, vcpu_row,
    HostInfo, SCHED_HEADER, UPTIME_HEADER, VCPU_LIST_HEADER,
};
use crate::parse::{Command, Create, Power, SchedCredit2, Target, VcpuSelect, Wait};
use crate::toolstack::{
    ConsoleType, DomainInfo, LibxlError, NicRef, Scheduler, ShutdownKind, ToolError, Toolstack,
};

/// The only CPU pool's name.
pub const POOL_NAME: &str = "Pool-0";

/// `XEN_SYSCTL_SCHED_RATELIMIT_MIN` and `_MAX` (`xen/include/public/sysctl.h`), µs.
const RATELIMIT: (i32, i32) = (100, 500_000);

fn put(out: &mut impl Write, text: &str) -> Result<(), XlError> {
    out.write_str(text).map_err(|_| XlError::failure("stdout: Input/output error\n"))
}

/// libxl's log line for `e`, if it logged one.
fn logged(e: &ToolError) -> String {
    e.reason.as_ref().map(|r| format!("libxl: error: {r}\n")).unwrap_or_default()
}

/// libxl's log line for `e`, or `libxl: error: DEFAULT` when the toolstack gave no reason.
fn logged_or(e: &ToolError, default: &str) -> String {
    format!("libxl: error: {}\n", e.reason.as_deref().unwrap_or(default))
}

/// libxl's log line for `e`, followed by xl's message.
fn failed(e: &ToolError, message: &str) -> XlError {
    XlError::failure(format!("{}{message}", logged(e)))
}

fn invalid(arg: &str, code: LibxlError) -> XlError {
    XlError::failure(format!("{arg} is an invalid domain identifier (rc={})\n", code.rc()))
}

/// Resolves a domain argument against `domains` as xl's `find_domain` does (see the module
/// documentation); the error is xl's message.
pub fn resolve(arg: &str, domains: &[DomainInfo]) -> Result<u16, XlError> {
    if arg.bytes().all(|b| b.is_ascii_digit()) {
        // strtoul, then `uint32_t domid`.
        let id = strtoul(arg).0 as u32;
        return u16::try_from(id)
            .ok()
            .filter(|id| *id < DOMID_FIRST_RESERVED)
            .ok_or_else(|| invalid(arg, LibxlError::Inval));
    }
    domains
        .iter()
        .find(|d| d.name == arg)
        .map(|d| d.domid)
        .ok_or_else(|| invalid(arg, LibxlError::Inval))
}

/// `find_domain`: ids need no domain list; a name when the list cannot be read is
/// `ERROR_NOMEM`, as `libxl_name_to_domid` returns.
fn find_domain(ts: &mut impl Toolstack, arg: &str) -> Result<u16, XlError> {
    if arg.bytes().all(|b| b.is_ascii_digit()) {
        return resolve(arg, &[]);
    }
    match ts.list_domains() {
        Ok(domains) => resolve(arg, &domains),
        Err(_) => Err(invalid(arg, LibxlError::NoMem)),
    }
}

/// `libxl_domid_to_name`: the name, or what glibc prints for a NULL `%s`.
fn name_of(domains: &[DomainInfo], id: u16) -> String {
    domains
        .iter()
        .find(|d| d.domid == id)
        .map_or_else(|| String::from("(null)"), |d| d.name.clone())
}

fn list_domains(ts: &mut impl Toolstack) -> Result<Vec<DomainInfo>, XlError> {
    ts.list_domains().map_err(|e| failed(&e, "libxl_list_domain failed.\n"))
}

/// Executes `command` through `ts`, writing xl's output to `out`.
pub fn run(
    command: &Command,
    ts: &mut impl Toolstack,
    out: &mut impl Write,
) -> Result<(), XlError> {
    match command {
        Command::Create(c) => create(c, ts, out),
        Command::List { long, domain } => list_command(*long, domain.as_deref(), ts, out),
        Command::Destroy { domain, force } => destroy(domain, *force, ts),
        Command::Shutdown(p) => power(p, ShutdownKind::Poweroff, ts, out),
        Command::Reboot(p) => power(p, ShutdownKind::Reboot, ts, out),
        Command::Pause { domain } => {
            let id = find_domain(ts, domain)?;
            let default = format!("Domain {id}:Pausing domain");
            ts.pause(id).map_err(|e| XlError::failure(logged_or(&e, &default)))
        }
        Command::Unpause { domain } => {
            let id = find_domain(ts, domain)?;
            let default = format!("Domain {id}:Unpausing domain");
            ts.unpause(id).map_err(|e| XlError::failure(logged_or(&e, &default)))
        }
        Command::Console { domain, console, number } => {
            let id = find_domain(ts, domain)?;
            attach_console(id, *console, *number, ts)
        }
        Command::VcpuList { domains } => vcpu_list(domains, ts, out),
        Command::VcpuPin { domain, vcpu, hard, soft, ignore_masks, .. } => {
            let id = find_domain(ts, domain)?;
            vcpu_pin(id, *vcpu, hard.as_ref(), soft.as_ref(), *ignore_masks, ts)
        }
        Command::SchedCredit2(s) => sched_credit2(s, ts, out),
        Command::Info { filter } => {
            let host = HostInfo {
                node: ts.node_info(),
                phys: ts.physinfo().ok(),
                version: ts.version_info().ok(),
                scheduler: ts.scheduler().ok(),
            };
            put(out, &info(&host, filter.as_deref()))
        }
        Command::Dmesg { clear } => {
            let text = ts
                .console_ring(*clear)
                .map_err(|e| XlError::failure(logged_or(&e, "reading console ring buffer")))?;
            put(out, &text)
        }
        Command::Uptime { short, domains } => uptime(*short, domains, ts, out),
        Command::MemSet { domain, memory, memory_kb } => {
            let id = find_domain(ts, domain)?;
            ts.set_memory_target(id, *memory_kb).map_err(|e| {
                failed(&e, &format!("cannot set domid {id} dynamic max memory to : {memory}\n"))
            })
        }
        Command::NetworkAttach { domain, vif } => {
            let id = find_domain(ts, domain)?;
            ts.network_attach(id, vif).map_err(|e| failed(&e, "libxl_device_nic_add failed.\n"))
        }
        Command::NetworkDetach { domain, device, text } => {
            let id = find_domain(ts, domain)?;
            network_detach(id, device, text, ts)
        }
        Command::Help { command } => put(out, &help(command.as_deref())),
    }
}

/// `main_create` and `create_domain` (`tools/xl/xl_vmcontrol.c`): read the file, add the
/// `KEY=VALUE` words as lines, parse and check it with `xenolith-xlcfg`, refuse a name in use,
/// build the domain paused, connect the console (`-c`), unpause it (unless `-p`).
fn create(c: &Create, ts: &mut impl Toolstack, out: &mut impl Write) -> Result<(), XlError> {
    let path = &c.config_file;
    let mut text = ts.read_file(path).map_err(|e| {
        let why = e.reason.unwrap_or_else(|| format!("error {}", e.code.rc()));
        XlError::failure(format!("Failed to read config file: {path}: {why}\n"))
    })?;
    if !c.extra.is_empty() {
        text.push('\n');
        for line in &c.extra {
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
    }
    if !c.quiet {
        put(out, &format!("Parsing config from {path}\n"))?;
    }
    let parsed = parse_domain(&text).map_err(|e| {
        XlError::failure(format!("{path}:{}:{}: {}\n", e.line, e.column, e.message))
    })?;
    for w in &parsed.warnings {
        put(out, &format!("{path}:{}:{}: warning: {}\n", w.line, w.column, w.message))?;
    }
    let config = &parsed.config;
    let domains = ts
        .list_domains()
        .map_err(|e| failed(&e, "libxl: error: Unexpected error checking for existing domain\n"))?;
    if domains.iter().any(|d| d.name == config.name) {
        return Err(XlError::failure(format!(
            "libxl: error: Domain with name \"{}\" already exists.\n",
            config.name
        )));
    }
    // Memory beyond what is free is refused at the `memory` key, before anything is built
    // (Xenolith's: libxl finds out when it fails to allocate, and leaves xl to clean up).
    if let Ok(physinfo) = ts.physinfo() {
        let free_mib = physinfo.free_pages / 256;
        if config.memory_mib > free_mib {
            let settings = xenolith_xlcfg::parse(&text).unwrap_or_default();
            let at = settings.get("memory").map_or(settings.end, |s| s.value.pos());
            return Err(XlError::failure(format!(
                "{path}:{}:{}: memory: {} MiB is more than the {free_mib} MiB free\n",
                at.line, at.column, config.memory_mib
            )));
        }
    }
    let id = ts
        .create(config)
        .map_err(|e| failed(&e, &format!("create failed (rc={})\n", e.code.rc())))?;
    if c.console {
        if let Err(e) = attach_console(id, None, 0, ts) {
            put(out, &e.text)?;
        }
    }
    if !c.paused {
        if let Err(e) = ts.unpause(id) {
            put(out, &logged(&e))?;
        }
    }
    Ok(())
}

/// `main_console` (`tools/xl/xl_console.c`) and the console client it runs. Without `-t`, the
/// domain's primary console (`libxl_primary_console_exec`, which ignores `-n`); libxl first
/// looks up the domain's type (`libxl__domain_type` in `libxl_dom.c`), and a domain that does
/// not exist is `unable to get domain type for domid=N`, then xl's `Unable to attach
/// console`. With `-t`, console `-n` of that type (`libxl_console_exec`), which xenconsole
/// (`tools/console/client/main.c`) looks for in xenstore: `serial` falls back to `pv` when the
/// domain has no serial console, and a console that is not there ends in xenconsole's `Could
/// not read tty from store`. A Xenolith domain has one console, PV console 0, if the console
/// domain serves it: any other, or a domain without one ([`LibxlError::NotFound`] from
/// [`Toolstack::console`]), gets xenconsole's failure at once (xenconsole waits 5 s for the
/// tty first).
fn attach_console(
    id: u16,
    console: Option<ConsoleType>,
    number: i32,
    ts: &mut impl Toolstack,
) -> Result<(), XlError> {
    let no_tty = || {
        XlError::failure("xenconsole: Could not read tty from store: No such file or directory\n")
    };
    match console {
        None => {
            let exists =
                ts.list_domains().is_ok_and(|domains| domains.iter().any(|d| d.domid == id));
            if !exists {
                return Err(XlError::failure(format!(
                    "libxl: error: unable to get domain type for domid={id}\nUnable to attach console\n"
                )));
            }
        }
        Some(ConsoleType::Pv | ConsoleType::Serial) if number == 0 => {}
        Some(_) => return Err(no_tty()),
    }
    match ts.console(id, console, number) {
        Ok(()) => Ok(()),
        Err(e) if e.code == LibxlError::NotFound => Err(no_tty()),
        Err(e) => Err(failed(&e, "Unable to attach console\n")),
    }
}

/// `main_list` (`tools/xl/xl_info.c`).
fn list_command(
    long: bool,
    domain: Option<&str>,
    ts: &mut impl Toolstack,
    out: &mut impl Write,
) -> Result<(), XlError> {
    let selected = match domain {
        None => list_domains(ts)?,
        Some(arg) => {
            let id = find_domain(ts, arg)?;
            let domains = ts.list_domains().map_err(|e| {
                failed(&e, &format!("libxl_domain_info failed (code {}).\n", e.code.rc()))
            })?;
            let one: Vec<DomainInfo> = domains.into_iter().filter(|d| d.domid == id).collect();
            if one.is_empty() {
                return Err(XlError::failure(format!("Error: Domain '{arg}' does not exist.\n")));
            }
            one
        }
    };
    if !long {
        return put(out, &list(&selected));
    }
    let configs: Vec<_> =
        selected.iter().filter_map(|d| ts.domain_config(d.domid).map(|c| (d.domid, c))).collect();
    let refs: Vec<_> = configs.iter().map(|(id, c)| (*id, c)).collect();
    put(out, &list_long(&refs))
}

/// `main_destroy` and `destroy_domain` (`tools/xl/xl_vmcontrol.c`).
fn destroy(arg: &str, force: bool, ts: &mut impl Toolstack) -> Result<(), XlError> {
    let id = find_domain(ts, arg)?;
    if id == 0 && !force {
        return Err(XlError::failure(
            "Not destroying domain 0; use -f to force.\n\
             This can only be done when using a disaggregated hardware domain and toolstack.\n\n",
        ));
    }
    let domains = ts.list_domains().map_err(|e| failed(&e, "destroy failed (rc=-3)\n"))?;
    if !domains.iter().any(|d| d.domid == id) {
        return Err(XlError::failure(format!(
            "libxl: error: Domain {id}:Non-existant domain\n\
             libxl: error: Domain {id}:Unable to destroy guest\n\
             destroy failed (rc={})\n",
            LibxlError::DomainNotFound.rc()
        )));
    }
    ts.destroy(id).map_err(|e| failed(&e, &format!("destroy failed (rc={})\n", e.code.rc())))
}

/// `main_shutdown_or_reboot`, `shutdown_domain`/`reboot_domain` and `wait_for_domain_deaths`
/// (`tools/xl/xl_vmcontrol.c`).
fn power(
    p: &Power,
    kind: ShutdownKind,
    ts: &mut impl Toolstack,
    out: &mut impl Write,
) -> Result<(), XlError> {
    let ids: Vec<u16> = match &p.target {
        Target::All => list_domains(ts)?
            .iter()
            .filter(|d| d.domid != 0 && !d.never_stop)
            .map(|d| d.domid)
            .collect(),
        Target::Domain(arg) => alloc::vec![find_domain(ts, arg)?],
    };
    let (doing, what, event, trigger) = match kind {
        ShutdownKind::Poweroff => ("Shutting down", "shutdown", "power", "power"),
        ShutdownKind::Reboot => ("Rebooting", "reboot", "reset", "reset"),
    };
    for &id in &ids {
        put(out, &format!("{doing} domain {id}\n"))?;
        let Err(e) = ts.shutdown(id, kind) else { continue };
        let mut text = logged(&e);
        let mut code = e.code;
        if code == LibxlError::NoParavirt {
            if p.fallback {
                // libxl_send_trigger: Arm guests have no ACPI, Xen refuses the trigger.
                text.push_str(&format!(
                    "PV control interface not available: sending ACPI {event} button event.\n\
                     libxl: error: Domain {id}:Send trigger '{trigger}' failed\n"
                ));
                code = LibxlError::Fail;
            } else {
                text.push_str(&format!(
                    "PV control interface not available: external graceful {what} not possible.\n\
                     Use \"-F\" to fallback to ACPI {event} event.\n"
                ));
            }
        }
        text.push_str(&format!("{what} failed (rc={})\n", code.rc()));
        return Err(XlError::failure(text));
    }
    if p.wait == Wait::No {
        return Ok(());
    }
    wait_for(ts, ids, p.wait)
}

/// Looks at the domain list until each domain in `ids` is gone (or, for `-w` once, has shut
/// down), at most [`Toolstack::WAIT_POLLS`] times.
fn wait_for<T: Toolstack>(ts: &mut T, mut ids: Vec<u16>, wait: Wait) -> Result<(), XlError> {
    for poll in 0..T::WAIT_POLLS {
        if poll > 0 {
            ts.wait();
        }
        let domains = ts.list_domains().map_err(|e| {
            XlError::failure(format!("Failed to get event, quitting (rc={})\n", e.code.rc()))
        })?;
        ids.retain(|id| match domains.iter().find(|d| d.domid == *id) {
            None => false,
            Some(d) => !(wait == Wait::ShutdownOrDeath && d.shutdown),
        });
        if ids.is_empty() {
            return Ok(());
        }
    }
    let mut text = String::new();
    for id in ids {
        text.push_str(&format!("Gave up waiting for domain {id}\n"));
    }
    Err(XlError::failure(text))
}

/// `vcpulist` and `print_domain_vcpuinfo` (`tools/xl/xl_vcpu.c`).
fn vcpu_list(
    args: &[String],
    ts: &mut impl Toolstack,
    out: &mut impl Write,
) -> Result<(), XlError> {
    let phys = ts.physinfo().map_err(|e| failed(&e, "libxl_physinfo failed.\n"))?;
    let nr_cpus = phys.max_cpu_id.wrapping_add(1);
    put(out, VCPU_LIST_HEADER)?;
    let ids: Vec<u16> = if args.is_empty() {
        list_domains(ts)?.iter().map(|d| d.domid).collect()
    } else {
        let mut ids = Vec::new();
        for arg in args {
            ids.push(find_domain(ts, arg)?);
        }
        ids
    };
    let domains = ts.list_domains().unwrap_or_default();
    for id in ids {
        match ts.vcpus(id) {
            Ok(vcpus) => {
                let name = name_of(&domains, id);
                for v in &vcpus {
                    put(out, &vcpu_row(&name, id, v, nr_cpus))?;
                }
            }
            Err(e) => put(out, &logged(&e))?,
        }
    }
    Ok(())
}

/// `main_vcpupin` (`tools/xl/xl_vcpu.c`). The maps are trimmed to the host's pCPUs; without
/// `-i`, an empty hard affinity is refused as `apply_global_affinity_masks` refuses it.
fn vcpu_pin(
    id: u16,
    vcpu: VcpuSelect,
    hard: Option<&crate::cpumap::CpuMap>,
    soft: Option<&crate::cpumap::CpuMap>,
    ignore_masks: bool,
    ts: &mut impl Toolstack,
) -> Result<(), XlError> {
    let phys = ts.physinfo().map_err(|e| failed(&e, "libxl_physinfo failed.\n"))?;
    let nr_cpus = phys.max_cpu_id.wrapping_add(1);
    let hard = hard.map(|m| m.trimmed(nr_cpus));
    let soft = soft.map(|m| m.trimmed(nr_cpus));
    if let (false, Some(h)) = (ignore_masks, &hard) {
        let known = ts.list_domains().map(|d| d.iter().any(|d| d.domid == id)).unwrap_or(false);
        if !known {
            return Err(XlError::failure("Could not get domain info\n"));
        }
        if h.is_empty() {
            return Err(XlError::failure("vcpu hard affinity map is empty\n"));
        }
    }
    match vcpu {
        VcpuSelect::One(v) => {
            let message = format!("Could not set affinity for vcpu `{v}'.\n");
            let v = u32::try_from(v).map_err(|_| XlError::failure(message.clone()))?;
            ts.set_vcpu_affinity(id, v, hard.as_ref(), soft.as_ref())
                .map_err(|e| failed(&e, &message))
        }
        VcpuSelect::All => {
            let vcpus = ts.vcpus(id).map_err(|e| failed(&e, "libxl_list_vcpu failed.\n"))?;
            let mut text = String::new();
            for v in &vcpus {
                if let Err(e) = ts.set_vcpu_affinity(id, v.vcpuid, hard.as_ref(), soft.as_ref()) {
                    text.push_str(&logged(&e));
                    if !text.ends_with("Could not set affinity.\n") {
                        text.push_str("Could not set affinity.\n");
                    }
                }
            }
            if text.is_empty() {
                Ok(())
            } else {
                Err(XlError::failure(text))
            }
        }
    }
}

/// `libxl_cpupool_qualifier_to_cpupoolid` and `libxl_cpupoolid_is_valid`: `Pool-0`, or a
/// non-empty run of digits whose value is 0.
fn check_pool(pool: &Option<String>) -> Result<(), XlError> {
    let Some(p) = pool else { return Ok(()) };
    let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if p == POOL_NAME || (digits && strtoul(p).0 as u32 == 0) {
        return Ok(());
    }
    Err(XlError::failure(format!("unknown cpupool '{p}'\n")))
}

/// `sched_credit2_pool_output`: the pool's line, after libxl's and xl's complaint if the
/// parameters cannot be read.
fn pool_output(ts: &mut impl Toolstack, out: &mut impl Write) -> Result<(), XlError> {
    match ts.credit2_ratelimit() {
        Ok(r) => put(out, &credit2_pool(POOL_NAME, Some(r))),
        Err(e) => {
            put(out, &format!("{}libxl_sched_credit2_params_get failed.\n", logged(&e)))?;
            put(out, &credit2_pool(POOL_NAME, None))
        }
    }
}

/// `sched_credit2_domain_output`: one domain's line, or xl's message.
fn domain_output(ts: &mut impl Toolstack, name: &str, id: u16) -> Result<String, String> {
    let p = ts
        .sched_params(id)
        .map_err(|e| format!("{}libxl_domain_sched_params_get failed.\n", logged(&e)))?;
    if p.sched != Scheduler::Credit2 {
        return Err(format!(
            "libxl_domain_sched_params_get returned {} not {}.\n",
            p.sched.name(),
            Scheduler::Credit2.name()
        ));
    }
    Ok(sched_row(name, id, &p))
}

/// `main_sched_credit2` (`tools/xl/xl_sched.c`).
fn sched_credit2(
    s: &SchedCredit2,
    ts: &mut impl Toolstack,
    out: &mut impl Write,
) -> Result<(), XlError> {
    check_pool(&s.cpupool)?;
    if s.schedparam {
        let Some(r) = s.ratelimit else { return pool_output(ts, out) };
        let set_failed = "libxl_sched_credit2_params_set failed.\n";
        if r != 0 && (r < RATELIMIT.0 || r > RATELIMIT.1) {
            return Err(XlError::failure(format!(
                "libxl: error: Ratelimit out of range, valid range is from {} to {}\n{set_failed}",
                RATELIMIT.0, RATELIMIT.1
            )));
        }
        return ts.set_credit2_ratelimit(r as u32).map_err(|e| failed(&e, set_failed));
    }
    let Some(dom) = &s.domain else {
        // sched_domain_output: every pool running credit2, with its domains.
        let domains = list_domains(ts)?;
        let sched = ts.scheduler().map_err(|e| failed(&e, "error getting cpupool info\n"))?;
        if sched != Scheduler::Credit2 {
            return Ok(());
        }
        pool_output(ts, out)?;
        put(out, SCHED_HEADER)?;
        for d in domains.iter().filter(|d| d.cpupool == 0) {
            match domain_output(ts, &d.name, d.domid) {
                Ok(line) => put(out, &line)?,
                Err(text) => {
                    put(out, &text)?;
                    break;
                }
            }
        }
        return Ok(());
    };
    let id = find_domain(ts, dom)?;
    let domains = ts.list_domains();
    if s.weight.is_none() && s.cap.is_none() {
        let name = name_of(domains.as_deref().unwrap_or_default(), id);
        put(out, SCHED_HEADER)?;
        let line = domain_output(ts, &name, id).map_err(XlError::failure)?;
        return put(out, &line);
    }
    let set_failed = "libxl_domain_sched_params_set failed.\n";
    let domains = domains.map_err(|e| failed(&e, set_failed))?;
    let Some(info) = domains.iter().find(|d| d.domid == id) else {
        return Err(XlError::failure(set_failed));
    };
    // LIBXL_DOMAIN_SCHED_PARAM_WEIGHT_DEFAULT and _CAP_DEFAULT are -1: "leave alone".
    let weight = s.weight.filter(|w| *w != -1);
    let cap = s.cap.filter(|c| *c != -1);
    if let Some(w) = weight {
        if !(1..=65535).contains(&w) {
            return Err(XlError::failure(format!(
                "libxl: error: Domain {id}:Cpu weight out of range, valid values are within \
                 range from 1 to 65535\n{set_failed}"
            )));
        }
    }
    if let Some(c) = cap {
        let max = info.vcpu_max_id.wrapping_add(1).wrapping_mul(100);
        if c < 0 || c as u32 > max {
            return Err(XlError::failure(format!(
                "libxl: error: Domain {id}:Cpu cap out of range, valid range is from 0 to {} for \
                 specified number of vcpus\n{set_failed}",
                max as i32
            )));
        }
    }
    ts.set_sched_params(id, weight.map(|w| w as u16), cap.map(|c| c as u16))
        .map_err(|e| failed(&e, set_failed))
}

/// `main_uptime` and `print_uptime` (`tools/xl/xl_info.c`).
fn uptime(
    short: bool,
    args: &[String],
    ts: &mut impl Toolstack,
    out: &mut impl Write,
) -> Result<(), XlError> {
    let mut ids = Vec::new();
    for arg in args {
        ids.push(find_domain(ts, arg)?);
    }
    if !short {
        put(out, UPTIME_HEADER)?;
    }
    let domains = match ts.list_domains() {
        Ok(d) => d,
        Err(_) if ids.is_empty() => return Err(XlError::failure("Could not list vms.\n")),
        Err(_) => Vec::new(),
    };
    if args.is_empty() {
        ids = domains.iter().map(|d| d.domid).collect();
    }
    let now = ts.time_of_day();
    for id in ids {
        let Some(seconds) = ts.uptime(id) else { continue };
        let name = name_of(&domains, id);
        let line = if short {
            uptime_short_row(now, &name, id, seconds)
        } else {
            uptime_row(&name, id, seconds)
        };
        put(out, &line)?;
    }
    Ok(())
}

/// `main_networkdetach` (`tools/xl/xl_nic.c`).
fn network_detach(
    id: u16,
    device: &NicRef,
    text: &str,
    ts: &mut impl Toolstack,
) -> Result<(), XlError> {
    ts.network_detach(id, device).map_err(|e| {
        if e.code == LibxlError::NotFound {
            failed(&e, &format!("Unknown device {text}.\n"))
        } else {
            failed(&e, "libxl_device_nic_del failed.\n")
        }
    })
}
