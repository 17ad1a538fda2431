//! `run` against a fake toolstack: every command, its output, the calls it makes, and its
//! errors with xl's (and libxl's) messages.

mod common;

use common::{exec, fails, lines, ok, Dying, Fake};
use xenolith_xl::{resolve, LibxlError, ToolError, Toolstack};

#[test]
fn resolving_domains() {
    let domains = common::domains();
    assert_eq!(resolve("guest", &domains), Ok(3));
    assert_eq!(resolve("3", &domains), Ok(3));
    // Ids are not checked against the list; an empty word is all digits, so id 0.
    assert_eq!(resolve("42", &domains), Ok(42));
    assert_eq!(resolve("", &domains), Ok(0));
    assert_eq!(resolve("007", &domains), Ok(7));
    let invalid = |arg: &str| format!("{arg} is an invalid domain identifier (rc=-6)\n");
    assert_eq!(resolve("nosuch", &domains).unwrap_err().text, invalid("nosuch"));
    assert_eq!(resolve("Guest", &domains).unwrap_err().text, invalid("Guest"));
    assert_eq!(resolve("-3", &domains).unwrap_err().text, invalid("-3"));
    // Xenolith: reserved ids (DOMID_SELF, ...) and numbers past 16 bits are refused.
    assert_eq!(resolve("32752", &domains).unwrap_err().text, invalid("32752"));
    assert_eq!(resolve("65536", &domains).unwrap_err().text, invalid("65536"));
    assert_eq!(resolve("32751", &domains), Ok(32751));
}

#[test]
fn name_lookup_without_a_list() {
    let mut fake = Fake { failing: vec!["list_domains"], ..Fake::default() };
    // libxl_name_to_domid returns ERROR_NOMEM when the list cannot be read.
    let (_, e) = fails(&mut fake, "pause guest");
    assert_eq!(e, "guest is an invalid domain identifier (rc=-5)\n");
    ok(&mut fake, "pause 3");
}

#[test]
fn list() {
    let mut fake = Fake::default();
    let expected = lines(&[
        "Name                                        ID   Mem VCPUs\tState\tTime(s)",
        "control                                      0   128     1     r-----      12.3",
        "xenstore                                     1    32     1     -b----       0.0",
        "guest                                        3   257     2     -bp---       0.2",
    ]);
    assert_eq!(ok(&mut fake, "list"), expected);
    assert_eq!(
        ok(&mut fake, "xl li guest"),
        lines(&[expected.lines().next().unwrap(), expected.lines().nth(3).unwrap()])
    );
    assert_eq!(ok(&mut fake, "list 1").lines().nth(1).unwrap(), expected.lines().nth(2).unwrap());
    assert_eq!(fails(&mut fake, "list 9").1, "Error: Domain '9' does not exist.\n");
    assert_eq!(
        fails(&mut fake, "list nosuch").1,
        "nosuch is an invalid domain identifier (rc=-6)\n"
    );
    let mut broken = Fake { failing: vec!["list_domains"], ..Fake::default() };
    assert_eq!(fails(&mut broken, "list").1, "libxl_list_domain failed.\n");
    assert_eq!(fails(&mut broken, "list 3").1, "libxl_domain_info failed (code -3).\n");
}

#[test]
fn list_long_shows_created_domains() {
    let mut fake = Fake::default();
    ok(&mut fake, "create /etc/xen/new.cfg");
    let json = ok(&mut fake, "list -l");
    // Only domains created from a configuration have one to show.
    assert!(json.starts_with("[\n    {\n        \"domid\": 7,\n        \"config\": {\n"));
    assert!(json.contains("\"name\": \"new\""));
    assert!(json.contains("\"max_vcpus\": 2,"));
    assert!(json.contains("\"target_memkb\": 131072,"));
    assert!(json.contains("\"kernel\": \"/boot/Image\""));
    assert!(!json.contains("control"));
    assert!(json.ends_with("\n]\n\n"));
    assert_eq!(ok(&mut fake, "list -l guest"), "[\n\n]\n\n");
}

#[test]
fn destroy() {
    let mut fake = Fake::default();
    assert_eq!(ok(&mut fake, "destroy guest"), "");
    assert_eq!(fake.calls, ["destroy 3"]);
    assert!(!fake.domains.iter().any(|d| d.domid == 3));
    let (_, e) = fails(&mut fake, "destroy 0");
    assert_eq!(
        e,
        "Not destroying domain 0; use -f to force.\n\
         This can only be done when using a disaggregated hardware domain and toolstack.\n\n"
    );
    ok(&mut fake, "destroy -f 0");
    assert_eq!(fake.calls, ["destroy 3", "destroy 0"]);
    let (_, e) = fails(&mut fake, "destroy 9");
    assert_eq!(
        e,
        "libxl: error: Domain 9:Non-existant domain\n\
         libxl: error: Domain 9:Unable to destroy guest\n\
         destroy failed (rc=-21)\n"
    );
    assert_eq!(
        fails(&mut fake, "destroy nosuch").1,
        "nosuch is an invalid domain identifier (rc=-6)\n"
    );
    let mut fake = Fake { failing: vec!["destroy"], ..Fake::default() };
    assert_eq!(
        fails(&mut fake, "destroy 3").1,
        "libxl: error: destroy failed in the fake\ndestroy failed (rc=-3)\n"
    );
}

#[test]
fn shutdown_and_reboot() {
    let mut fake = Fake::default();
    assert_eq!(ok(&mut fake, "shutdown guest"), "Shutting down domain 3\n");
    assert_eq!(fake.calls, ["shutdown 3 Poweroff"]);
    let mut fake = Fake::default();
    assert_eq!(ok(&mut fake, "reboot 3"), "Rebooting domain 3\n");
    assert_eq!(fake.calls, ["shutdown 3 Reboot"]);
    // -a: every domain but domain 0 and the never-stop service domains.
    let mut fake = Fake::default();
    assert_eq!(ok(&mut fake, "shutdown -a"), "Shutting down domain 3\n");
    assert_eq!(fake.calls, ["shutdown 3 Poweroff"]);
    assert_eq!(
        fails(&mut fake, "shutdown nosuch").1,
        "nosuch is an invalid domain identifier (rc=-6)\n"
    );
    let mut fake = Fake { failing: vec!["shutdown"], ..Fake::default() };
    assert_eq!(
        fails(&mut fake, "shutdown 3"),
        (
            "Shutting down domain 3\n".to_string(),
            "libxl: error: shutdown failed in the fake\nshutdown failed (rc=-3)\n".to_string()
        )
    );
}

#[test]
fn shutdown_without_pv_control() {
    let no_pv = Some(ToolError::new(LibxlError::NoParavirt));
    let mut fake = Fake { shutdown_error: no_pv.clone(), ..Fake::default() };
    assert_eq!(
        fails(&mut fake, "shutdown 3").1,
        "PV control interface not available: external graceful shutdown not possible.\n\
         Use \"-F\" to fallback to ACPI power event.\n\
         shutdown failed (rc=-10)\n"
    );
    assert_eq!(
        fails(&mut fake, "reboot -F 3").1,
        "PV control interface not available: sending ACPI reset button event.\n\
         libxl: error: Domain 3:Send trigger 'reset' failed\n\
         reboot failed (rc=-3)\n"
    );
}

#[test]
fn shutdown_waits() {
    // -w: until the domain has shut down (here after one wait) or is gone.
    let mut fake = Fake { dying: Dying { shut_after: 1, gone_after: None }, ..Fake::default() };
    assert_eq!(ok(&mut fake, "shutdown -w guest"), "Shutting down domain 3\n");
    assert_eq!(fake.calls, ["shutdown 3 Poweroff", "wait"]);
    // -w -w: until it is gone.
    let mut fake = Fake { dying: Dying { shut_after: 1, gone_after: Some(3) }, ..Fake::default() };
    ok(&mut fake, "shutdown -ww guest");
    assert_eq!(fake.calls, ["shutdown 3 Poweroff", "wait", "wait", "wait"]);
    assert!(!fake.domains.iter().any(|d| d.domid == 3));
    // A domain that never goes: WAIT_POLLS looks, with a wait between each two.
    let mut fake = Fake { dying: Dying { shut_after: 1, gone_after: None }, ..Fake::default() };
    let (out, e) = fails(&mut fake, "shutdown -ww 3");
    assert_eq!(
        (out.as_str(), e.as_str()),
        ("Shutting down domain 3\n", "Gave up waiting for domain 3\n")
    );
    let waits = fake.calls.iter().filter(|c| *c == "wait").count();
    assert_eq!(waits as u32, <Fake as Toolstack>::WAIT_POLLS - 1);
}

#[test]
fn pause_and_unpause() {
    let mut fake = Fake::default();
    ok(&mut fake, "pause guest");
    ok(&mut fake, "unpause 3");
    assert_eq!(fake.calls, ["pause 3", "unpause 3"]);
    assert_eq!(fails(&mut fake, "pause 9").1, "libxl: error: Domain 9:Pausing domain\n");
    assert_eq!(fails(&mut fake, "unpause 9").1, "libxl: error: Domain 9:Unpausing domain\n");
    assert_eq!(
        fails(&mut fake, "pause").1.lines().next(),
        Some("'xl pause' requires at least 1 argument.")
    );
}

#[test]
fn console() {
    let mut fake = Fake::default();
    // The primary console; `-n` is ignored without `-t`; `serial` falls back to PV console 0.
    for command in ["console guest", "console -n 1 3", "console -t pv 3", "console -t serial 3"] {
        assert_eq!(ok(&mut fake, command), "", "{command}");
    }
    assert_eq!(
        fake.calls,
        [
            "console 3 None 0",
            "console 3 None 1",
            "console 3 Some(Pv) 0",
            "console 3 Some(Serial) 0"
        ]
    );
    // libxl looks the domain up first for the primary console.
    fake.calls.clear();
    assert_eq!(
        fails(&mut fake, "console 9").1,
        "libxl: error: unable to get domain type for domid=9\nUnable to attach console\n"
    );
    let mut broken = Fake { failing: vec!["list_domains"], ..Fake::default() };
    assert_eq!(
        fails(&mut broken, "console 3").1,
        "libxl: error: unable to get domain type for domid=3\nUnable to attach console\n"
    );
    assert!(fake.calls.is_empty() && broken.calls.is_empty());
    // Consoles that are not there: xenconsole's words, not xl's.
    let no_tty = "xenconsole: Could not read tty from store: No such file or directory\n";
    for command in [
        "console -t pv -n 1 3",
        "console -t serial -n 2 3",
        "console -t vuart 3",
        "console -t pv 9",
        "console 1",
        "console xenstore",
    ] {
        assert_eq!(fails(&mut fake, command).1, no_tty, "{command}");
    }
    assert_eq!(
        fake.calls,
        ["console 9 Some(Pv) 0", "console 1 None 0", "console 1 None 0"],
        "only consoles that may be there are asked for"
    );
    let mut fake = Fake { failing: vec!["console"], ..Fake::default() };
    assert_eq!(
        fails(&mut fake, "console 3").1,
        "libxl: error: console failed in the fake\nUnable to attach console\n"
    );
}

#[test]
fn vcpu_list() {
    let mut fake = Fake::default();
    let header =
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)";
    let control = "control                              0     0    0   ---       0.0  all / all";
    let guest = [
        "guest                                3     0    1   ---       0.0  0-1 / all",
        "guest                                3     1    2   ---       0.0  2-3 / 3",
    ];
    // Domain 1's vCPUs cannot be read: libxl's complaint, and the others still listed.
    assert_eq!(
        ok(&mut fake, "vcpu-list"),
        lines(&[header, control, "libxl: error: Domain 1:getting infolist", guest[0], guest[1]])
    );
    assert_eq!(ok(&mut fake, "vcpu-list guest"), lines(&[header, guest[0], guest[1]]));
    // An unknown name fails after the header.
    let (out, e) = fails(&mut fake, "vcpu-list guest nosuch");
    assert_eq!(out, lines(&[header]));
    assert_eq!(e, "nosuch is an invalid domain identifier (rc=-6)\n");
    let mut fake = Fake { failing: vec!["physinfo"], ..Fake::default() };
    assert_eq!(
        fails(&mut fake, "vcpu-list"),
        (
            String::new(),
            "libxl: error: physinfo failed in the fake\nlibxl_physinfo failed.\n".into()
        )
    );
}

#[test]
fn vcpu_pin() {
    let mut fake = Fake::default();
    ok(&mut fake, "vcpu-pin guest 1 0-1 -");
    ok(&mut fake, "vcpu-pin guest 0 - 2,3");
    // Trimmed to the host's four pCPUs.
    ok(&mut fake, "vcpu-pin guest 0 all all");
    ok(&mut fake, "vcpu-pin guest all 3");
    let affinity: Vec<_> = fake.calls.iter().filter(|c| c.starts_with("affinity")).collect();
    assert_eq!(
        affinity,
        [
            "affinity 3 1 [0, 1] -",
            "affinity 3 0 - [2, 3]",
            "affinity 3 0 [0, 1, 2, 3] [0, 1, 2, 3]",
            "affinity 3 0 [3] -",
            "affinity 3 1 [3] -",
        ]
    );
    // A hard affinity with none of the host's pCPUs.
    assert_eq!(fails(&mut fake, "vcpu-pin guest 0 7").1, "vcpu hard affinity map is empty\n");
    assert_eq!(
        fails(&mut fake, "vcpu-pin guest 0 0-3,^0-3").1,
        "vcpu hard affinity map is empty\n"
    );
    // -i skips the check; the toolstack gets the empty map.
    ok(&mut fake, "vcpu-pin -i guest 0 7");
    assert_eq!(fake.calls.last().unwrap(), "affinity 3 0 [] -");
    assert_eq!(fails(&mut fake, "vcpu-pin 9 0 1").1, "Could not get domain info\n");
    let mut fake = Fake { failing: vec!["set_vcpu_affinity"], ..Fake::default() };
    assert_eq!(
        fails(&mut fake, "vcpu-pin guest 5 1").1,
        "libxl: error: set_vcpu_affinity failed in the fake\nCould not set affinity for vcpu `5'.\n"
    );
    let (_, e) = fails(&mut fake, "vcpu-pin guest all 1");
    assert!(e.ends_with("Could not set affinity.\n"), "{e}");
    let mut fake = Fake { failing: vec!["vcpus"], ..Fake::default() };
    assert!(fails(&mut fake, "vcpu-pin guest all 1").1.ends_with("libxl_list_vcpu failed.\n"));
}

#[test]
fn sched_credit2_listing() {
    let mut fake = Fake::default();
    let expected = lines(&[
        "Cpupool Pool-0: ratelimit=1000us",
        "Name                                ID Weight  Cap",
        "control                              0    256    0",
        "xenstore                             1    256    0",
        "guest                                3    512   50",
    ]);
    assert_eq!(ok(&mut fake, "sched-credit2"), expected);
    assert_eq!(ok(&mut fake, "sched-credit2 -p Pool-0"), expected);
    assert_eq!(ok(&mut fake, "sched-credit2 -p 0"), expected);
    assert_eq!(fails(&mut fake, "sched-credit2 -p Pool-1").1, "unknown cpupool 'Pool-1'\n");
    assert_eq!(
        ok(&mut fake, "sched-credit2 -d guest"),
        lines(&[
            "Name                                ID Weight  Cap",
            "guest                                3    512   50"
        ])
    );
    // No credit2 pool: nothing at all.
    let mut fake = Fake { scheduler: xenolith_xl::Scheduler::Null, ..Fake::default() };
    assert_eq!(ok(&mut fake, "sched-credit2"), "");
    // A domain whose parameters cannot be read ends the listing, without failing.
    let mut fake = Fake::default();
    fake.sched.remove(1);
    assert_eq!(
        ok(&mut fake, "sched-credit2"),
        lines(&[
            "Cpupool Pool-0: ratelimit=1000us",
            "Name                                ID Weight  Cap",
            "control                              0    256    0",
            "libxl: error: Domain 1:Getting domain sched credit2",
            "libxl_domain_sched_params_get failed.",
        ])
    );
    assert_eq!(
        fails(&mut fake, "sched-credit2 -d 1").1,
        "libxl: error: Domain 1:Getting domain sched credit2\nlibxl_domain_sched_params_get failed.\n"
    );
    fake.sched[0].1.sched = xenolith_xl::Scheduler::Rtds;
    assert_eq!(
        fails(&mut fake, "sched-credit2 -d 0").1,
        "libxl_domain_sched_params_get returned rtds not credit2.\n"
    );
}

#[test]
fn sched_credit2_setting() {
    let mut fake = Fake::default();
    assert_eq!(ok(&mut fake, "sched-credit2 -d guest -w 512"), "");
    ok(&mut fake, "sched-credit2 -d guest -c 200");
    // -1 is libxl's "leave alone".
    ok(&mut fake, "sched-credit2 -d guest -w -1 -c 0");
    assert_eq!(
        fake.calls,
        ["set_sched 3 Some(512) None", "set_sched 3 None Some(200)", "set_sched 3 None Some(0)"]
    );
    let weight_error = "libxl: error: Domain 3:Cpu weight out of range, valid values are within range from 1 to 65535\n\
                        libxl_domain_sched_params_set failed.\n";
    assert_eq!(fails(&mut fake, "sched-credit2 -d guest -w 0").1, weight_error);
    assert_eq!(fails(&mut fake, "sched-credit2 -d guest -w x").1, weight_error);
    assert_eq!(fails(&mut fake, "sched-credit2 -d guest -w 65536").1, weight_error);
    // Cap: at most 100 per vCPU (guest has vCPUs 0 and 1).
    assert_eq!(
        fails(&mut fake, "sched-credit2 -d guest -c 201").1,
        "libxl: error: Domain 3:Cpu cap out of range, valid range is from 0 to 200 for specified number of vcpus\n\
         libxl_domain_sched_params_set failed.\n"
    );
    assert!(fails(&mut fake, "sched-credit2 -d guest -c -2").1.contains("from 0 to 200"));
    // An id nobody has: libxl's ERROR_INVAL, with no log line.
    assert_eq!(
        fails(&mut fake, "sched-credit2 -d 9 -w 5").1,
        "libxl_domain_sched_params_set failed.\n"
    );
    assert_eq!(
        fails(&mut fake, "sched-credit2 -d nosuch -w 5").1,
        "nosuch is an invalid domain identifier (rc=-6)\n"
    );
    assert_eq!(fake.calls.len(), 3, "no refused value reached the toolstack");
    let mut fake = Fake { failing: vec!["set_sched_params"], ..Fake::default() };
    assert_eq!(
        fails(&mut fake, "sched-credit2 -d 3 -w 5").1,
        "libxl: error: set_sched_params failed in the fake\nlibxl_domain_sched_params_set failed.\n"
    );
}

#[test]
fn sched_credit2_pool_parameters() {
    let mut fake = Fake::default();
    assert_eq!(ok(&mut fake, "sched-credit2 -s"), "Cpupool Pool-0: ratelimit=1000us\n");
    ok(&mut fake, "sched-credit2 -s -r 100");
    ok(&mut fake, "sched-credit2 -s -r 0");
    ok(&mut fake, "sched-credit2 --schedparam --ratelimit_us=500000");
    assert_eq!(fake.calls, ["set_ratelimit 100", "set_ratelimit 0", "set_ratelimit 500000"]);
    let range = "libxl: error: Ratelimit out of range, valid range is from 100 to 500000\n\
                 libxl_sched_credit2_params_set failed.\n";
    assert_eq!(fails(&mut fake, "sched-credit2 -s -r 99").1, range);
    assert_eq!(fails(&mut fake, "sched-credit2 -s -r 500001").1, range);
    // -r without -s is ignored, as in xl.
    assert_eq!(ok(&mut fake, "sched-credit2 -r 5 -d guest").lines().count(), 2);
    let mut fake = Fake {
        ratelimit: Err(ToolError::because(
            LibxlError::Fail,
            "getting Credit2 scheduler parameters",
        )),
        ..Fake::default()
    };
    assert_eq!(
        ok(&mut fake, "sched-credit2 -s"),
        lines(&[
            "libxl: error: getting Credit2 scheduler parameters",
            "libxl_sched_credit2_params_get failed.",
            "Cpupool Pool-0: [sched params unavailable]",
        ])
    );
}

#[test]
fn info() {
    let mut fake = Fake::default();
    let text = ok(&mut fake, "info");
    assert!(text.starts_with("host                   : xenolith\n"));
    assert!(text.contains("\nfree_memory            : 777\n"));
    assert!(text.contains("\nxen_scheduler          : credit2\n"));
    assert!(text.ends_with("\nxend_config_format     : 4\n"));
    assert_eq!(ok(&mut fake, "info xen_version"), "4.17.0\n");
    let mut fake = Fake { failing: vec!["physinfo"], ..Fake::default() };
    assert!(ok(&mut fake, "info")
        .contains("machine                : aarch64\nlibxl_physinfo failed.\n"));
}

#[test]
fn dmesg() {
    let mut fake = Fake::default();
    assert_eq!(ok(&mut fake, "dmesg"), "(XEN) Xenolith starting\n(XEN) done\n");
    ok(&mut fake, "dmesg -c");
    assert_eq!(fake.calls, ["console_ring false", "console_ring true"]);
    let mut fake = Fake { failing: vec!["console_ring"], ..Fake::default() };
    assert_eq!(fails(&mut fake, "dmesg").1, "libxl: error: console_ring failed in the fake\n");
}

#[test]
fn uptime() {
    let mut fake = Fake::default();
    assert_eq!(
        ok(&mut fake, "uptime"),
        lines(&[
            "Name                                ID Uptime",
            "control                              0 1 day,  1:01:01",
            "xenstore                             1 1 day,  1:00:00",
            "guest                                3  1:01:01",
        ])
    );
    assert_eq!(ok(&mut fake, "uptime -s guest"), " 13:05:09 up  1:01, guest (3)\n");
    // A domain without a known start time is left out.
    assert_eq!(ok(&mut fake, "uptime 9"), "Name                                ID Uptime\n");
    let (out, e) = fails(&mut fake, "uptime guest nosuch");
    assert_eq!(
        (out.as_str(), e.as_str()),
        ("", "nosuch is an invalid domain identifier (rc=-6)\n")
    );
}

#[test]
fn mem_set() {
    let mut fake = Fake::default();
    ok(&mut fake, "mem-set guest 512");
    ok(&mut fake, "mem-set 3 1g");
    assert_eq!(fake.calls, ["mem 3 524288", "mem 3 1048576"]);
    let mut fake = Fake { failing: vec!["set_memory_target"], ..Fake::default() };
    assert_eq!(
        fails(&mut fake, "mem-set guest 256m").1,
        "libxl: error: set_memory_target failed in the fake\n\
         cannot set domid 3 dynamic max memory to : 256m\n"
    );
}

#[test]
fn network_devices() {
    let mut fake = Fake::default();
    assert_eq!(
        fails(&mut fake, "network-attach guest bridge=xenbr0").1,
        "libxl: error: netback does not exist yet\nlibxl_device_nic_add failed.\n"
    );
    assert_eq!(fake.calls, ["network_attach 3 [(\"bridge\", \"xenbr0\")]"]);
    assert_eq!(fails(&mut fake, "network-detach guest 0").1, "Unknown device 0.\n");
    assert_eq!(
        fails(&mut fake, "network-detach guest 00:16:3e:00:00:01").1,
        "libxl: error: netback does not exist yet\nlibxl_device_nic_del failed.\n"
    );
}

#[test]
fn create() {
    let mut fake = Fake::default();
    assert_eq!(ok(&mut fake, "create /etc/xen/new.cfg"), "Parsing config from /etc/xen/new.cfg\n");
    assert_eq!(
        fake.calls,
        ["read /etc/xen/new.cfg", "physinfo", "create new 128 MiB", "unpause 7"]
    );
    let config = &fake.configs[0].1;
    assert_eq!((config.vcpus, config.kernel.as_deref()), (2, Some("/boot/Image")));
    // The same name again: libxl refuses it before building anything.
    assert_eq!(
        fails(&mut fake, "create /etc/xen/new.cfg").1,
        "libxl: error: Domain with name \"new\" already exists.\n"
    );
    // KEY=VALUE words are lines after the file's; -p leaves it paused, -c connects, -q is quiet.
    let mut fake = Fake::default();
    assert_eq!(ok(&mut fake, "create -q -p -c /etc/xen/new.cfg name='other' memory=64"), "");
    assert_eq!(
        fake.calls,
        ["read /etc/xen/new.cfg", "physinfo", "create other 64 MiB", "console 7 None 0"]
    );
}

#[test]
fn create_errors() {
    let mut fake = Fake::default();
    assert_eq!(
        fails(&mut fake, "create /etc/xen/missing.cfg").1,
        "Failed to read config file: /etc/xen/missing.cfg: No such file or directory\n"
    );
    fake.files.push(("bad.cfg".into(), "name = \"b\"\nmemory = lots\n".into()));
    let (out, e) = fails(&mut fake, "create bad.cfg");
    assert_eq!(out, "Parsing config from bad.cfg\n");
    assert!(e.starts_with("bad.cfg:2:10: "), "{e}");
    fake.files.push(("warn.cfg".into(), "name = \"w\"\nweight = 5\n".into()));
    let out = ok(&mut fake, "create warn.cfg");
    assert_eq!(
        out,
        "Parsing config from warn.cfg\n\
         warn.cfg:2:1: warning: key `weight' is not used by Xenolith and ignored (xl's key is `cpu_weight')\n"
    );
    // More memory than is free (781 MiB here): refused at the key, nothing built.
    fake.files.push(("big.cfg".into(), "name = \"big\"\n\nmemory = 1024\n".into()));
    let (_, e) = fails(&mut fake, "create big.cfg");
    assert_eq!(e, "big.cfg:3:10: memory: 1024 MiB is more than the 781 MiB free\n");
    let (_, e) = fails(&mut fake, "create big.cfg memory=900");
    assert!(e.starts_with("big.cfg:5:8: memory: 900 MiB is more than"), "{e}");
    assert!(!fake.calls.iter().any(|call| call.starts_with("create big")), "{:?}", fake.calls);
    let mut fake = Fake { failing: vec!["create"], ..Fake::default() };
    assert_eq!(
        fails(&mut fake, "create /etc/xen/new.cfg").1,
        "libxl: error: create failed in the fake\ncreate failed (rc=-3)\n"
    );
    // A console that cannot be attached does not undo the domain.
    let mut fake = Fake { failing: vec!["console"], ..Fake::default() };
    let out = ok(&mut fake, "create -c /etc/xen/new.cfg");
    assert!(out.ends_with("libxl: error: console failed in the fake\nUnable to attach console\n"));
    assert_eq!(fake.calls.last().unwrap(), "unpause 7");
}

#[test]
fn help() {
    let mut fake = Fake::default();
    assert!(ok(&mut fake, "help").starts_with("Usage xl [-vfNtT] <subcommand> [args]\n"));
    assert_eq!(
        ok(&mut fake, "unpause -h"),
        "Usage: xl [-vtTf] unpause <Domain>\n\nUnpause a paused domain.\n\n"
    );
    assert!(fake.calls.is_empty());
}

#[test]
fn every_failure_has_a_status() {
    let mut fake = Fake::default();
    let (_, result) = exec(&mut fake, "list -x");
    assert_eq!(result.unwrap_err().status, 2);
    let (_, result) = exec(&mut fake, "list nosuch");
    assert_eq!(result.unwrap_err().status, 1);
}
