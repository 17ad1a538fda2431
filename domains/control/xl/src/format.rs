//! xl 4.17's output formats, each a function from plain data to the exact text xl prints.
//!
//! Widths, separators and number formats are facts read from xl's `printf` format strings; each
//! function names the Xen function it follows. Text is padded by bytes, as C's `%-40s` does.
//! Times are printed as xl computes them: nanoseconds converted to C `float`, then divided by
//! 1e9 in `double` and printed with `%.1f` (Rust's `{:.1}` rounds as glibc's `printf` does).

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use xenolith_abi::xen::sysctl::{
    XEN_SYSCTL_PHYSCAP_directio, XEN_SYSCTL_PHYSCAP_gnttab_v1, XEN_SYSCTL_PHYSCAP_gnttab_v2,
    XEN_SYSCTL_PHYSCAP_hap, XEN_SYSCTL_PHYSCAP_hvm, XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share,
    XEN_SYSCTL_PHYSCAP_pv, XEN_SYSCTL_PHYSCAP_shadow, XEN_SYSCTL_PHYSCAP_vmtrace,
    XEN_SYSCTL_PHYSCAP_vpmu,
};
use xenolith_xlcfg::{Action, DomainConfig, DomainType};

use crate::cpumap::print_bitmap;
use crate::json::Json;
use crate::toolstack::{
    DomainInfo, NodeInfo, PhysInfo, SchedParams, Scheduler, VcpuInfo, VersionInfo,
};

/// `text` padded with spaces on the right to `width` bytes (`%-Ns`).
fn left(text: &str, width: usize) -> String {
    let mut s = String::from(text);
    while s.len() < width {
        s.push(' ');
    }
    s
}

/// `(float)ns / 1e9`, as xl computes seconds of CPU time.
fn seconds(ns: u64) -> f64 {
    f64::from(ns as f32) / 1e9
}

/// The header of `xl list` (`list_domains` in `tools/xl/xl_info.c`).
pub const LIST_HEADER: &str =
    "Name                                        ID   Mem VCPUs\tState\tTime(s)\n";

/// One line of `xl list` (`list_domains` in `tools/xl/xl_info.c`: `"%-40s %5d %5lu %5d
/// %c%c%c%c%c%c  %8.1f"`): name, id, MiB (allocated plus claimed), vCPUs up, the six state
/// letters `r b p s` (shutdown reason: `-rscwS`, `?` beyond) `d`, CPU seconds.
pub fn list_row(d: &DomainInfo) -> String {
    const REASONS: &[u8] = b"-rscwS";
    let reason = if d.shutdown { d.shutdown_reason as usize } else { 0 };
    let letter = |on: bool, c: char| if on { c } else { '-' };
    format!(
        "{} {:>5} {:>5} {:>5}     {}{}{}{}{}{}  {:>8.1}\n",
        left(&d.name, 40),
        d.domid,
        d.current_memkb.wrapping_add(d.outstanding_memkb) / 1024,
        d.vcpu_online as i32,
        letter(d.running, 'r'),
        letter(d.blocked, 'b'),
        letter(d.paused, 'p'),
        letter(d.shutdown, 's'),
        REASONS.get(reason).map_or('?', |b| char::from(*b)),
        letter(d.dying, 'd'),
        seconds(d.cpu_time)
    )
}

/// `xl list`: the header and one line per domain.
pub fn list(domains: &[DomainInfo]) -> String {
    let mut out = String::from(LIST_HEADER);
    for d in domains {
        out.push_str(&list_row(d));
    }
    out
}

fn action_name(action: Action) -> &'static str {
    // libxl_action_on_shutdown_to_string: the IDL value names in lower case.
    match action {
        Action::Destroy => "destroy",
        Action::Restart => "restart",
        Action::RenameRestart => "restart_rename",
        Action::Preserve => "preserve",
        Action::CoredumpDestroy => "coredump_destroy",
        Action::CoredumpRestart => "coredump_restart",
        Action::SoftReset => "soft_reset",
    }
}

/// `xl list -l`: a JSON array with one `{"domid": ID, "config": CONFIG}` per domain
/// (`list_domains_details` and `printf_info_one_json` in `tools/xl/xl_info.c`), followed by
/// the newline `puts` adds.
///
/// CONFIG is `libxl_domain_config` as libxl's generated `libxl_domain_config_gen_json` writes
/// it: keys in the IDL's order, a field left out while it holds its default, nested structures
/// always written. Written here: `c_info` (`type`, `name`), `b_info` (`max_vcpus`,
/// `avail_vcpus`, `max_memkb`, `target_memkb`, `sched_params` with `weight`/`cap` when they are
/// not xl.cfg's defaults 256/0, `kernel`, `cmdline`, `ramdisk`), and `on_poweroff`,
/// `on_reboot`, `on_crash` when not `destroy`. Left out: the UUID and everything libxl fills
/// in while building (`c_info.run_hotplug_scripts`, `b_info`'s `type.pvh` and `arch_arm`
/// sections, affinities, `irqs`, `iomem`, grant-frame limits, ...) and the device lists
/// (`disks`, `nics`, `dtdevs`).
pub fn list_long(domains: &[(u16, &DomainConfig)]) -> String {
    let mut j = Json::new();
    j.array_open();
    for (domid, c) in domains {
        j.map_open();
        j.string("domid");
        j.integer(i64::from(*domid));
        j.string("config");
        j.map_open();

        j.string("c_info");
        j.map_open();
        j.key_string(
            "type",
            match c.domain_type {
                DomainType::Pvh => "pvh",
            },
        );
        j.key_string("name", &c.name);
        j.map_close();

        j.string("b_info");
        j.map_open();
        j.string("max_vcpus");
        j.integer(i64::from(c.maxvcpus));
        j.string("avail_vcpus");
        j.array_open();
        for v in 0..c.vcpus {
            j.integer(i64::from(v));
        }
        j.array_close();
        j.string("max_memkb");
        j.unsigned(c.maxmem_mib.wrapping_mul(1024));
        j.string("target_memkb");
        j.unsigned(c.memory_mib.wrapping_mul(1024));
        j.string("sched_params");
        j.map_open();
        if c.weight != 256 {
            j.string("weight");
            j.integer(i64::from(c.weight));
        }
        if c.cap != 0 {
            j.string("cap");
            j.integer(i64::from(c.cap));
        }
        j.map_close();
        for (key, value) in
            [("kernel", &c.kernel), ("cmdline", &c.cmdline), ("ramdisk", &c.ramdisk)]
        {
            if let Some(v) = value {
                j.key_string(key, v);
            }
        }
        j.map_close();

        for (key, action) in
            [("on_poweroff", c.on_poweroff), ("on_reboot", c.on_reboot), ("on_crash", c.on_crash)]
        {
            if action != Action::Destroy {
                j.key_string(key, action_name(action));
            }
        }
        j.map_close();
        j.map_close();
    }
    j.array_close();
    let mut out = j.finish();
    out.push('\n');
    out
}

/// The header of `xl vcpu-list` (`vcpulist` in `tools/xl/xl_vcpu.c`:
/// `"%-32s %5s %5s %5s %5s %9s %s"`).
pub const VCPU_LIST_HEADER: &str =
    "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n";

/// One line of `xl vcpu-list` (`print_vcpuinfo` in `tools/xl/xl_vcpu.c`): name, domain id,
/// vCPU, then for an online vCPU its pCPU and `r`/`b` state (`"%5u %3c%c- "`), for an offline
/// one `-` and `--p` (`"%5c %3c%cp "`), CPU seconds (`"%9.1f  "`), and the hard and soft
/// affinity over the host's `nr_cpus` pCPUs, separated by ` / `.
pub fn vcpu_row(name: &str, domid: u16, v: &VcpuInfo, nr_cpus: u32) -> String {
    let mut out = format!("{} {:>5} {:>5}", left(name, 32), domid, v.vcpuid);
    if v.online {
        let _ = write!(
            out,
            "{:>5} {:>3}{}- ",
            v.cpu,
            if v.running { 'r' } else { '-' },
            if v.blocked { 'b' } else { '-' }
        );
    } else {
        // "%5c %3c%cp " with '-' for all three.
        out.push_str("    -   --p ");
    }
    let _ = write!(out, "{:>9.1}  ", seconds(v.vcpu_time));
    out.push_str(&print_bitmap(&v.cpumap, nr_cpus));
    out.push_str(" / ");
    out.push_str(&print_bitmap(&v.cpumap_soft, nr_cpus));
    out.push('\n');
    out
}

/// `xl vcpu-list`: the header, then every vCPU of each `(name, domid, vcpus)`.
pub fn vcpu_list(domains: &[(&str, u16, &[VcpuInfo])], nr_cpus: u32) -> String {
    let mut out = String::from(VCPU_LIST_HEADER);
    for (name, domid, vcpus) in domains {
        for v in *vcpus {
            out.push_str(&vcpu_row(name, *domid, v, nr_cpus));
        }
    }
    out
}

/// A CPU pool's line in `xl sched-credit2` (`sched_credit2_pool_output` in
/// `tools/xl/xl_sched.c`): `Cpupool POOL: ratelimit=Nus`, or `[sched params unavailable]`
/// when the parameters could not be read (`None`).
pub fn credit2_pool(pool: &str, ratelimit_us: Option<u32>) -> String {
    match ratelimit_us {
        Some(r) => format!("Cpupool {pool}: ratelimit={}us\n", r as i32),
        None => format!("Cpupool {pool}: [sched params unavailable]\n"),
    }
}

/// The header of `xl sched-credit2`'s domain lines (`sched_credit2_domain_output` in
/// `tools/xl/xl_sched.c`: `"%-33s %4s %6s %4s"`).
pub const SCHED_HEADER: &str = "Name                                ID Weight  Cap\n";

/// One domain's line in `xl sched-credit2` (`"%-33s %4d %6d %4d"`): name, id, weight, cap.
pub fn sched_row(name: &str, domid: u16, p: &SchedParams) -> String {
    format!("{} {:>4} {:>6} {:>4}\n", left(name, 33), domid, p.weight, p.cap)
}

/// What `xl info` reads; `None` where the call failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostInfo {
    /// `uname` of the domain xl runs in.
    pub node: NodeInfo,
    /// `libxl_get_physinfo`.
    pub phys: Option<PhysInfo>,
    /// `libxl_get_version_info`.
    pub version: Option<VersionInfo>,
    /// `libxl_get_scheduler`.
    pub scheduler: Option<Scheduler>,
}

/// A `key : value` line of `xl info`: the key padded to 23 columns.
fn field(out: &mut String, filter: Option<&str>, key: &str, value: &str) {
    let line = format!("{key:<23}: {value}\n");
    maybe_print(out, filter, &line);
}

/// `maybe_printf` in `tools/xl/xl_info.c`: with a filter, only lines starting with it that
/// have `: ` at their first colon are printed, and only the text after `: `.
fn maybe_print(out: &mut String, filter: Option<&str>, line: &str) {
    match filter {
        None => out.push_str(line),
        Some(f) => {
            if line.starts_with(f) {
                if let Some(at) = line.find(':') {
                    if line[at + 1..].starts_with(' ') {
                        out.push_str(&line[at + 2..]);
                    }
                }
            }
        }
    }
}

/// `xl info [NAME]` (`print_info` and `output_nodeinfo`, `output_physinfo`,
/// `output_xeninfo` in `tools/xl/xl_info.c`): `uname`, the host, Xen's version strings, and
/// `xend_config_format : 4`. Memory lines are MiB: pages divided by `(1 << 20) / pagesize`,
/// printed only when the version (page size) is known; `free_memory` is free minus claimed.
/// A failed call prints libxl's message for it in place of its lines.
pub fn info(host: &HostInfo, filter: Option<&str>) -> String {
    let mut out = String::new();
    let f = filter;
    field(&mut out, f, "host", &host.node.host);
    field(&mut out, f, "release", &host.node.release);
    field(&mut out, f, "version", &host.node.version);
    field(&mut out, f, "machine", &host.node.machine);

    match &host.phys {
        None => out.push_str("libxl_physinfo failed.\n"),
        Some(p) => {
            field(&mut out, f, "nr_cpus", &format!("{}", p.nr_cpus as i32));
            field(&mut out, f, "max_cpu_id", &format!("{}", p.max_cpu_id as i32));
            field(&mut out, f, "nr_nodes", &format!("{}", p.nr_nodes as i32));
            field(&mut out, f, "cores_per_socket", &format!("{}", p.cores_per_socket as i32));
            field(&mut out, f, "threads_per_core", &format!("{}", p.threads_per_core as i32));
            let khz = p.cpu_khz as i32;
            field(&mut out, f, "cpu_mhz", &format!("{}.{:03}", khz / 1000, khz % 1000));
            let mut caps = String::new();
            for (i, word) in p.hw_cap.iter().enumerate() {
                let _ = write!(caps, "{}{word:08x}", if i > 0 { ":" } else { "" });
            }
            field(&mut out, f, "hw_caps", &caps);
            maybe_print(
                &mut out,
                f,
                &format!("{:<23}:{}\n", "virt_caps", virt_caps(p.capabilities)),
            );
            if let Some(v) = &host.version {
                let per_mib = u64::from((1u32 << 20) / v.pagesize.max(1));
                let mib = |pages: u64| format!("{}", pages / per_mib.max(1));
                field(&mut out, f, "total_memory", &mib(p.total_pages));
                field(
                    &mut out,
                    f,
                    "free_memory",
                    &mib(p.free_pages.wrapping_sub(p.outstanding_pages)),
                );
                field(&mut out, f, "sharing_freed_memory", &mib(p.sharing_freed_pages));
                field(&mut out, f, "sharing_used_memory", &mib(p.sharing_used_frames));
                field(&mut out, f, "outstanding_claims", &mib(p.outstanding_pages));
            }
            if let Some(n) = p.free_cpus {
                field(&mut out, f, "free_cpus", &format!("{}", n as i32));
            }
        }
    }

    match (&host.version, host.scheduler) {
        (None, _) => out.push_str("libxl_get_version_info failed.\n"),
        (Some(_), None) => out.push_str("get_scheduler sysctl failed.\n"),
        (Some(v), Some(sched)) => {
            field(&mut out, f, "xen_major", &format!("{}", v.xen_version_major));
            field(&mut out, f, "xen_minor", &format!("{}", v.xen_version_minor));
            field(&mut out, f, "xen_extra", &v.xen_version_extra);
            let version =
                format!("{}.{}{}", v.xen_version_major, v.xen_version_minor, v.xen_version_extra);
            field(&mut out, f, "xen_version", &version);
            field(&mut out, f, "xen_caps", &v.capabilities);
            field(&mut out, f, "xen_scheduler", sched.name());
            field(&mut out, f, "xen_pagesize", &format!("{}", v.pagesize));
            field(&mut out, f, "platform_params", &format!("virt_start=0x{:x}", v.virt_start));
            field(&mut out, f, "xen_changeset", &v.changeset);
            field(&mut out, f, "xen_commandline", &v.commandline);
            field(&mut out, f, "cc_compiler", &v.compiler);
            field(&mut out, f, "cc_compile_by", &v.compile_by);
            field(&mut out, f, "cc_compile_domain", &v.compile_domain);
            field(&mut out, f, "cc_compile_date", &v.compile_date);
            field(&mut out, f, "build_id", &v.build_id);
        }
    }
    field(&mut out, f, "xend_config_format", "4");
    out
}

/// `virt_caps`'s words, each after a space (`output_physinfo`): `pv`, `hvm`, `hvm_directio`
/// (hvm and directio), `pv_directio` (pv and directio), `hap`, `shadow`,
/// `iommu_hap_pt_share`, `vmtrace`, `vpmu`, `gnttab-v1`, `gnttab-v2`.
fn virt_caps(c: u32) -> String {
    let has = |bit: u32| c & bit != 0;
    let (pv, hvm, directio) =
        (has(XEN_SYSCTL_PHYSCAP_pv), has(XEN_SYSCTL_PHYSCAP_hvm), has(XEN_SYSCTL_PHYSCAP_directio));
    let words = [
        (pv, " pv"),
        (hvm, " hvm"),
        (hvm && directio, " hvm_directio"),
        (pv && directio, " pv_directio"),
        (has(XEN_SYSCTL_PHYSCAP_hap), " hap"),
        (has(XEN_SYSCTL_PHYSCAP_shadow), " shadow"),
        (has(XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share), " iommu_hap_pt_share"),
        (has(XEN_SYSCTL_PHYSCAP_vmtrace), " vmtrace"),
        (has(XEN_SYSCTL_PHYSCAP_vpmu), " vpmu"),
        (has(XEN_SYSCTL_PHYSCAP_gnttab_v1), " gnttab-v1"),
        (has(XEN_SYSCTL_PHYSCAP_gnttab_v2), " gnttab-v2"),
    ];
    words.iter().filter(|(on, _)| *on).map(|(_, w)| *w).collect()
}

/// A duration as `uptime_to_string` in `tools/xl/xl_info.c` prints it: `H:MM:SS` with the
/// hours padded to two columns, after `N day, ` or `N days, ` when a day or more; the short
/// form (`uptime -s`) leaves out the seconds.
pub fn uptime_to_string(uptime: u64, short: bool) -> String {
    let day = (uptime / 86400) as i32;
    let rest = uptime % 86400;
    let (hour, min, sec) = ((rest / 3600) as i32, (rest % 3600 / 60) as i32, (rest % 60) as i32);
    let days = match day {
        0 => String::new(),
        1 => String::from("1 day, "),
        d => format!("{d} days, "),
    };
    if short {
        format!("{days}{hour:>2}:{min:02}")
    } else {
        format!("{days}{hour:>2}:{min:02}:{sec:02}")
    }
}

/// The header of `xl uptime` (`print_uptime` in `tools/xl/xl_info.c`: `"%-33s %4s %s"`).
pub const UPTIME_HEADER: &str = "Name                                ID Uptime\n";

/// One line of `xl uptime` (`print_domU_uptime`: `"%-33s %4d %s"`).
pub fn uptime_row(name: &str, domid: u16, uptime: u64) -> String {
    format!("{} {:>4} {}\n", left(name, 33), domid, uptime_to_string(uptime, false))
}

/// One line of `xl uptime -s` (`" %s up %s, %s (%d)"`): the time of day `HH:MM:SS`, the short
/// uptime, the name and the id.
pub fn uptime_short_row(time_of_day: u32, name: &str, domid: u16, uptime: u64) -> String {
    let t = time_of_day % 86400;
    format!(
        " {:02}:{:02}:{:02} up {}, {} ({})\n",
        t / 3600,
        t % 3600 / 60,
        t % 60,
        uptime_to_string(uptime, true),
        name,
        domid
    )
}
