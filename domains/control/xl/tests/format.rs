//! The output formats against literal text worked out from xl 4.17's format strings
//! (`tools/xl/xl_info.c`, `xl_vcpu.c`, `xl_sched.c`, `xl_utils.c`).

mod common;

use common::{domain, lines, node, phys, version};
use xenolith_xl::format::{
    credit2_pool, info, list, list_long, sched_row, uptime_row, uptime_short_row, uptime_to_string,
    vcpu_list, HostInfo, LIST_HEADER, SCHED_HEADER, UPTIME_HEADER, VCPU_LIST_HEADER,
};
use xenolith_xl::{parse_cpurange, print_bitmap, CpuMap, SchedParams, Scheduler, VcpuInfo};
use xenolith_xlcfg::parse_domain;

#[test]
fn headers() {
    // "Name" + 40-column name field, then " %5s %5s %5s" and tab-separated State and Time(s).
    assert_eq!(
        LIST_HEADER,
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
    );
    // "%-32s %5s %5s %5s %5s %9s %s"
    assert_eq!(
        VCPU_LIST_HEADER,
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n"
    );
    // "%-33s %4s %6s %4s"
    assert_eq!(SCHED_HEADER, "Name                                ID Weight  Cap\n");
    // "%-33s %4s %s"
    assert_eq!(UPTIME_HEADER, "Name                                ID Uptime\n");
}

#[test]
fn list_rows() {
    let mut control = domain(0, "control");
    control.running = true;
    control.current_memkb = 131072;
    control.cpu_time = 12_345_678_901;
    let mut guest = domain(3, "guest");
    guest.blocked = true;
    guest.paused = true;
    guest.current_memkb = 262_144;
    guest.outstanding_memkb = 1024;
    guest.vcpu_online = 2;
    // 0.25 s: a tie, printf rounds it to even.
    guest.cpu_time = 250_000_000;
    let mut crashed = domain(12, "crashed");
    crashed.shutdown = true;
    crashed.shutdown_reason = 3;
    crashed.dying = true;
    crashed.vcpu_online = 0;
    crashed.cpu_time = 1_050_000_000;
    // A name longer than the column pushes the rest right; reason 7 has no letter.
    let mut long = domain(32000, "a-rather-long-domain-name-of-forty-five-chars");
    long.shutdown = true;
    long.shutdown_reason = 7;
    long.current_memkb = 65536;
    // Poweroff (reason 0) prints '-'; CPU time goes through C's float (999999995904 ns).
    let mut off = domain(5, "off");
    off.shutdown = true;
    off.current_memkb = 32768;
    off.cpu_time = 999_999_999_999;
    let expected = lines(&[
        "Name                                        ID   Mem VCPUs\tState\tTime(s)",
        "control                                      0   128     1     r-----      12.3",
        "guest                                        3   257     2     -bp---       0.2",
        "crashed                                     12     0     0     ---scd       1.1",
        "a-rather-long-domain-name-of-forty-five-chars 32000    64     1     ---s?-       0.0",
        "off                                          5    32     1     ---s--    1000.0",
    ]);
    assert_eq!(list(&[control, guest, crashed, long, off]), expected);
}

#[test]
fn shutdown_reason_letters() {
    let letters: String = (0..7)
        .map(|reason| {
            let mut d = domain(1, "d");
            d.shutdown = true;
            d.shutdown_reason = reason;
            list(&[d]).lines().nth(1).unwrap().chars().nth(67).unwrap()
        })
        .collect();
    assert_eq!(letters, "-rscwS?");
}

fn sample_vcpus() -> Vec<VcpuInfo> {
    let mut v0 = common::vcpu(0, 1, &[0, 1, 2, 3], &[0, 1, 2, 3]);
    v0.running = true;
    v0.vcpu_time = 1_500_000_000;
    let mut v1 = common::vcpu(1, 0, &[0, 1, 3], &[2]);
    v1.blocked = true;
    v1.vcpu_time = 3_999_999_999;
    let mut v2 = common::vcpu(2, 0, &[], &[1, 2, 3]);
    v2.online = false;
    vec![v0, v1, v2]
}

#[test]
fn vcpu_rows() {
    let vcpus = sample_vcpus();
    let expected = lines(&[
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)",
        "guest                                3     0    1   r--       1.5  all / all",
        "guest                                3     1    0   -b-       4.0  0-1,3 / 2",
        "guest                                3     2    -   --p       0.0  none / 1-3",
    ]);
    assert_eq!(vcpu_list(&[("guest", 3, &vcpus)], 4), expected);
}

#[test]
fn bitmaps() {
    let show = |cpus: &[u32], nr: u32| print_bitmap(&CpuMap::from_cpus(8, cpus), nr);
    assert_eq!(show(&[], 4), "none");
    assert_eq!(show(&[0, 1, 2, 3], 4), "all");
    assert_eq!(show(&[0, 1, 2, 3, 4, 5, 6, 7], 4), "all", "bits past nr_cpus are not looked at");
    assert_eq!(show(&[1, 2, 3], 4), "1-3");
    assert_eq!(show(&[0, 1, 2], 4), "0-2");
    assert_eq!(show(&[0, 2], 4), "0,2");
    assert_eq!(show(&[3], 4), "3");
    assert_eq!(show(&[0, 1, 3], 4), "0-1,3");
    assert_eq!(show(&[0, 2, 3], 4), "0,2-3");
    assert_eq!(show(&[0], 1), "all");
    assert_eq!(show(&[0], 0), "none");
}

#[test]
fn cpu_ranges() {
    let cpus = |text: &str| parse_cpurange(text).map(|m| m.cpus());
    assert_eq!(cpus("0-2,^1"), Ok(vec![0, 2]));
    assert_eq!(cpus("3,1"), Ok(vec![1, 3]));
    assert_eq!(cpus("0,,2"), Ok(vec![0, 2]), "strtok skips empty items");
    assert_eq!(cpus("all,^3").map(|c| c.len()), Ok(1023));
    assert_eq!(cpus("nodes:0").map(|c| c.len()), Ok(1024), "node 0 holds every CPU");
    assert_eq!(cpus("node:1"), Ok(vec![]), "no other node has CPUs");
    assert_eq!(cpus("0-5000").map(|c| c.len()), Ok(1024), "CPUs past the map are ignored");
    assert_eq!(cpus("^all"), Err("Can't combine \"^\" and \"all\".\n".to_string()));
    assert_eq!(cpus("3-1"), Err("Invalid pcpu range: 3-1.\n".to_string()));
    assert_eq!(cpus("1-"), Err("Invalid pcpu range: 1-.\n".to_string()));
    assert_eq!(cpus("a"), Err("Invalid pcpu range: a.\n".to_string()));
    assert_eq!(cpus("2x"), Err("Invalid pcpu range: 2x.\n".to_string()));
    assert_eq!(cpus("^x"), Err("Invalid pcpu range: x.\n".to_string()));
    // strtoul's "-1" is ULONG_MAX, which parse_range refuses.
    assert_eq!(cpus("-1"), Err("Invalid pcpu range: -1.\n".to_string()));
}

#[test]
fn sched_lines() {
    let p = SchedParams { sched: Scheduler::Credit2, weight: 512, cap: 0 };
    assert_eq!(sched_row("guest", 3, &p), "guest                                3    512    0\n");
    let p = SchedParams { sched: Scheduler::Credit2, weight: 65535, cap: 12800 };
    assert_eq!(
        sched_row("control", 0, &p),
        "control                              0  65535 12800\n"
    );
    assert_eq!(credit2_pool("Pool-0", Some(1000)), "Cpupool Pool-0: ratelimit=1000us\n");
    assert_eq!(credit2_pool("Pool-0", None), "Cpupool Pool-0: [sched params unavailable]\n");
}

fn host() -> HostInfo {
    HostInfo {
        node: node(),
        phys: Some(phys()),
        version: Some(version()),
        scheduler: Some(Scheduler::Credit2),
    }
}

pub const INFO: &[&str] = &[
    "host                   : xenolith",
    "release                : 0.1.0",
    "version                : #1 Xenolith",
    "machine                : aarch64",
    "nr_cpus                : 2",
    "max_cpu_id             : 3",
    "nr_nodes               : 1",
    "cores_per_socket       : 2",
    "threads_per_core       : 1",
    "cpu_mhz                : 62.500",
    "hw_caps                : deadbeef:00000000:00000000:00000000:00000000:00000000:00000000:00000001",
    "virt_caps              : hvm hvm_directio hap gnttab-v1",
    "total_memory           : 1024",
    "free_memory            : 777",
    "sharing_freed_memory   : 0",
    "sharing_used_memory    : 0",
    "outstanding_claims     : 3",
    "free_cpus              : 0",
    "xen_major              : 4",
    "xen_minor              : 17",
    "xen_extra              : .0",
    "xen_version            : 4.17.0",
    "xen_caps               : xen-3.0-aarch64 xen-3.0-armv7l ",
    "xen_scheduler          : credit2",
    "xen_pagesize           : 4096",
    "platform_params        : virt_start=0x200000",
    "xen_changeset          : ",
    "xen_commandline        : console=dtuart",
    "cc_compiler            : rustc 1.95.0",
    "cc_compile_by          : xenolith",
    "cc_compile_domain      : ",
    "cc_compile_date        : 2026-01-01",
    "build_id               : ",
    "xend_config_format     : 4",
];

#[test]
fn info_lines() {
    assert_eq!(info(&host(), None), lines(INFO));
}

#[test]
fn info_filter() {
    // maybe_printf: a prefix of the key; only the value is printed.
    assert_eq!(info(&host(), Some("xen_version")), "4.17.0\n");
    assert_eq!(info(&host(), Some("free")), "777\n0\n");
    assert_eq!(info(&host(), Some("nosuch")), "");
    // virt_caps with no capability has no ": " and is never printed by name.
    let mut h = host();
    h.phys.as_mut().unwrap().capabilities = 0;
    assert_eq!(info(&h, Some("virt_caps")), "");
    assert!(info(&h, None).contains("\nvirt_caps              :\n"));
}

#[test]
fn info_with_failures() {
    let mut h = host();
    h.phys = None;
    h.scheduler = None;
    let text = info(&h, None);
    assert!(text.starts_with(&lines(&INFO[..4])));
    assert!(text.contains("machine                : aarch64\nlibxl_physinfo failed.\n"));
    assert!(text.ends_with("get_scheduler sysctl failed.\nxend_config_format     : 4\n"));
    // No page size: no memory lines.
    let mut h = host();
    h.version = None;
    let text = info(&h, None);
    assert!(!text.contains("total_memory"));
    assert!(text.contains("free_cpus              : 0\nlibxl_get_version_info failed.\n"));
}

#[test]
fn uptimes() {
    assert_eq!(uptime_to_string(0, false), " 0:00:00");
    assert_eq!(uptime_to_string(59, false), " 0:00:59");
    assert_eq!(uptime_to_string(3661, false), " 1:01:01");
    assert_eq!(uptime_to_string(86399, false), "23:59:59");
    assert_eq!(uptime_to_string(86400, false), "1 day,  0:00:00");
    assert_eq!(uptime_to_string(90061, false), "1 day,  1:01:01");
    assert_eq!(uptime_to_string(2 * 86400 + 36307, false), "2 days, 10:05:07");
    assert_eq!(uptime_to_string(90061, true), "1 day,  1:01");
    assert_eq!(uptime_to_string(59, true), " 0:00");
    assert_eq!(uptime_row("guest", 3, 3661), "guest                                3  1:01:01\n");
    assert_eq!(uptime_short_row(47109, "guest", 3, 3661), " 13:05:09 up  1:01, guest (3)\n");
}

#[test]
fn list_long_json() {
    let guest = parse_domain(
        "name = \"guest\"\nmemory = 128\nmaxmem = 256\nvcpus = 2\nmaxvcpus = 4\n\
         cpu_weight = 512\nkernel = \"/boot/Image\"\ncmdline = \"console=hvc0 \\\"q\\\"\"\n\
         on_crash = \"preserve\"\n",
    )
    .unwrap()
    .config;
    let plain = parse_domain("name = 'plain'\n").unwrap().config;
    let expected = lines(&[
        "[",
        "    {",
        "        \"domid\": 3,",
        "        \"config\": {",
        "            \"c_info\": {",
        "                \"type\": \"pvh\",",
        "                \"name\": \"guest\"",
        "            },",
        "            \"b_info\": {",
        "                \"max_vcpus\": 4,",
        "                \"avail_vcpus\": [",
        "                    0,",
        "                    1",
        "                ],",
        "                \"max_memkb\": 262144,",
        "                \"target_memkb\": 131072,",
        "                \"sched_params\": {",
        "                    \"weight\": 512",
        "                },",
        "                \"kernel\": \"/boot/Image\",",
        "                \"cmdline\": \"console=hvc0 \\\"q\\\"\"",
        "            },",
        "            \"on_reboot\": \"restart\",",
        "            \"on_crash\": \"preserve\"",
        "        }",
        "    },",
        "    {",
        "        \"domid\": 9,",
        "        \"config\": {",
        "            \"c_info\": {",
        "                \"type\": \"pvh\",",
        "                \"name\": \"plain\"",
        "            },",
        "            \"b_info\": {",
        "                \"max_vcpus\": 1,",
        "                \"avail_vcpus\": [",
        "                    0",
        "                ],",
        "                \"max_memkb\": 32768,",
        "                \"target_memkb\": 32768,",
        // yajl's empty map: a blank line before the closing brace.
        "                \"sched_params\": {",
        "",
        "                }",
        "            },",
        "            \"on_reboot\": \"restart\"",
        "        }",
        "    }",
        "]",
        // yajl ends the document with a newline, and puts adds another.
        "",
    ]);
    assert_eq!(list_long(&[(3, &guest), (9, &plain)]), expected);
    assert_eq!(list_long(&[]), "[\n\n]\n\n");
}
