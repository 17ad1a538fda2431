//! Command lines into commands: words, xl's option rules, numbers read the C way, and xl's
//! usage errors (`tools/xl/xl.c`, `xl_utils.c`, `xl_cmdtable.c` and the `main_*` functions).

use xenolith_xl::cnum::{atoi, strtol, strtoul};
use xenolith_xl::commands::{command_help, help, lookup, Lookup, COMMANDS};
use xenolith_xl::parse::parse_mem_size_kb;
use xenolith_xl::{
    parse, split_words, Command, ConsoleType, Create, NicRef, Power, SchedCredit2, Target,
    VcpuSelect, Wait, XlError,
};

fn cmd(line: &str) -> Command {
    parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn err(line: &str) -> XlError {
    parse(line).expect_err(line)
}

fn words(line: &str) -> Vec<String> {
    split_words(line).unwrap()
}

fn help_of(name: &str) -> String {
    command_help(COMMANDS.iter().find(|c| c.name == name).unwrap())
}

#[test]
fn splitting_words() {
    assert_eq!(words("  xl  list\t-l "), ["xl", "list", "-l"]);
    assert_eq!(words(r#"create "/etc/xen/my guest.cfg""#), ["create", "/etc/xen/my guest.cfg"]);
    assert_eq!(words(r#"a"b c"d"#), ["ab cd"]);
    assert_eq!(words(r#"x "" y"#), ["x", "", "y"]);
    assert_eq!(words(r#""say \"hi\" \\ \n""#), [r#"say "hi" \ \n"#]);
    assert!(words("").is_empty());
    let e = split_words(r#"list "open"#).unwrap_err();
    assert_eq!(e.text, "xl: a double-quoted word is not closed\n");
}

#[test]
fn leading_xl_and_global_options() {
    assert_eq!(cmd("xl list"), cmd("list"));
    assert_eq!(cmd("xl -v -tT list"), cmd("list"));
    assert_eq!(cmd("-f destroy 3"), cmd("destroy 3"));
    assert_eq!(err("xl -x list").text, "unknown global option\n");
    assert_eq!(
        err("xl -N list").text,
        "xl's global option -N (dry run) is not supported by Xenolith.\n"
    );
    // No command: the list of commands, and a failure.
    let e = err("xl");
    assert_eq!((e.status, e.text.clone()), (1, help(None)));
    assert!(e
        .text
        .starts_with("Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n"));
    assert!(e.text.contains("\n list                List information about all/some domains\n"));
    assert!(e.text.ends_with(" uptime              Print uptime for all/some domains\n"));
    assert_eq!(err("").text, help(None));
}

#[test]
fn abbreviations() {
    assert_eq!(cmd("li"), cmd("list"));
    assert_eq!(cmd("vcpu-l"), cmd("vcpu-list"));
    assert_eq!(cmd("dm"), cmd("dmesg"));
    assert_eq!(cmd("sched-credit2"), Command::SchedCredit2(SchedCredit2::default()));
    // Ambiguous among xl's commands: list/loadpolicy, destroy/devd/debug-keys.
    assert_eq!(lookup("l"), Lookup::Unknown);
    assert_eq!(err("de 3").text, "command not implemented\n");
    // An exact name wins over a longer one it prefixes; xl has sched-credit, Xenolith does not.
    assert_eq!(lookup("sched-credit"), Lookup::NotImplemented("sched-credit"));
    assert_eq!(err("sched-credit").text, "command not implemented\n");
    assert_eq!(err("top").text, "command not implemented\n");
    assert_eq!(err("frobnicate").text, "command not implemented\n");
    // `help` cannot be abbreviated.
    assert_eq!(err("hel").text, "command not implemented\n");
}

#[test]
fn help_commands() {
    assert_eq!(cmd("help"), Command::Help { command: None });
    assert_eq!(cmd("xl help list"), Command::Help { command: Some("list".into()) });
    assert_eq!(cmd("list -h"), Command::Help { command: Some("list".into()) });
    assert_eq!(cmd("destroy --help"), Command::Help { command: Some("destroy".into()) });
    assert_eq!(cmd("destroy --he"), Command::Help { command: Some("destroy".into()) });
    assert_eq!(cmd("destroy --help=x"), Command::Help { command: Some("destroy".into()) });
    // -h wins over a missing argument, but not over a refused option before it.
    assert_eq!(cmd("vcpu-pin -h"), Command::Help { command: Some("vcpu-pin".into()) });
    assert_eq!(err("list -x -h").text, "option `x' not supported.\n");
    assert_eq!(
        help(Some("pause")),
        "Usage: xl [-vtTf] pause <Domain>\n\nPause execution of a domain.\n\n"
    );
    assert_eq!(
        help(Some("dmesg")),
        "Usage: xl [-vtT] dmesg [-c]\n\nRead and/or clear dmesg buffer.\n\nOptions:\n\n  -c                        Clear dmesg buffer as well as printing it\n"
    );
    assert!(help(Some("create")).starts_with(
        "Usage: xl [-vtTfN] create <ConfigFile> [options] [vars]\n\nCreate a domain from config file <filename>.\n\nOptions:\n\n-c  "
    ));
    assert_eq!(help(Some("li")), help(Some("list")));
    assert_eq!(help(Some("top")), "command \"top\" not implemented\n");
    assert_eq!(help(Some("help")), help(None));
}

#[test]
fn option_errors() {
    let e = err("list -x");
    assert_eq!((e.status, e.text.as_str()), (2, "option `x' not supported.\n"));
    assert_eq!(err("list --bogus").text, "option `' not supported.\n");
    // --c is ambiguous between --context and --cpupool.
    assert_eq!(err("list --c").text, "option `' not supported.\n");
    assert_eq!(err("list --long=yes").text, "option `l' not supported.\n");
    assert_eq!(err("sched-credit2 -d").text, "option `d' not supported.\n");
    assert_eq!(err("sched-credit2 --domain").text, "option `d' not supported.\n");
    let e = err("destroy");
    assert_eq!(e.status, 2);
    assert_eq!(
        e.text,
        format!("'xl destroy' requires at least 1 argument.\n\n{}", help_of("destroy"))
    );
    let e = err("vcpu-pin guest 0");
    assert_eq!(
        e.text,
        format!("'xl vcpu-pin' requires at least 3 arguments.\n\n{}", help_of("vcpu-pin"))
    );
    assert_eq!(
        err("mem-set guest").text,
        format!("'xl mem-set' requires at least 2 arguments.\n\n{}", help_of("mem-set"))
    );
}

#[test]
fn gnu_option_rules() {
    // Options after arguments, grouping, "--", a value in the same word or the next.
    assert_eq!(cmd("destroy 3 -f"), Command::Destroy { domain: "3".into(), force: true });
    assert_eq!(cmd("destroy -- -f"), Command::Destroy { domain: "-f".into(), force: false });
    assert_eq!(cmd("destroy -"), Command::Destroy { domain: "-".into(), force: false });
    assert_eq!(cmd("list --lo g"), Command::List { long: true, domain: Some("g".into()) });
    let expected = SchedCredit2 {
        domain: Some("guest".into()),
        weight: Some(512),
        cap: Some(20),
        ..Default::default()
    };
    for line in [
        "sched-credit2 -d guest -w 512 -c 20",
        "sched-credit2 -dguest -w512 -c20",
        "sched-credit2 --domain=guest --weight 512 --cap=20",
        "sched-credit2 --dom guest --wei=512 -c 20",
        "sched-credit2 -c 20 -w 512 -d guest",
    ] {
        assert_eq!(cmd(line), Command::SchedCredit2(expected.clone()), "{line}");
    }
    // A value is the next word whatever it looks like.
    assert_eq!(
        cmd("sched-credit2 -d -w"),
        Command::SchedCredit2(SchedCredit2 { domain: Some("-w".into()), ..Default::default() })
    );
}

#[test]
fn list_and_simple_commands() {
    assert_eq!(cmd("list"), Command::List { long: false, domain: None });
    assert_eq!(cmd("list -l guest"), Command::List { long: true, domain: Some("guest".into()) });
    assert_eq!(err("list a b").text, help_of("list"));
    assert_eq!(err("list a b").status, 1);
    assert_eq!(err("list -v").text, "xl list -v is not supported by Xenolith.\n");
    assert_eq!(err("list --numa").text, "xl list -n is not supported by Xenolith.\n");
    assert_eq!(cmd("pause guest extra"), Command::Pause { domain: "guest".into() });
    assert_eq!(cmd("unpause 3"), Command::Unpause { domain: "3".into() });
    assert_eq!(cmd("vcpu-list"), Command::VcpuList { domains: vec![] });
    assert_eq!(cmd("vcpu-list a 3"), Command::VcpuList { domains: vec!["a".into(), "3".into()] });
    assert_eq!(cmd("info"), Command::Info { filter: None });
    assert_eq!(cmd("info xen_version"), Command::Info { filter: Some("xen_version".into()) });
    assert_eq!(err("info -n").text, "xl info -n (NUMA topology) is not supported by Xenolith.\n");
    assert_eq!(cmd("dmesg"), Command::Dmesg { clear: false });
    assert_eq!(cmd("dmesg --clear"), Command::Dmesg { clear: true });
    assert_eq!(
        cmd("uptime -s g 0"),
        Command::Uptime { short: true, domains: vec!["g".into(), "0".into()] }
    );
}

#[test]
fn shutdown_and_reboot() {
    let p = |target: Target, wait: Wait, fallback: bool| Power { target, wait, fallback };
    assert_eq!(
        cmd("shutdown guest"),
        Command::Shutdown(p(Target::Domain("guest".into()), Wait::No, false))
    );
    assert_eq!(
        cmd("shutdown -w guest"),
        Command::Shutdown(p(Target::Domain("guest".into()), Wait::ShutdownOrDeath, false))
    );
    assert_eq!(
        cmd("shutdown -ww guest"),
        Command::Shutdown(p(Target::Domain("guest".into()), Wait::Death, false))
    );
    assert_eq!(
        cmd("reboot --all --wait -F"),
        Command::Reboot(p(Target::All, Wait::ShutdownOrDeath, true))
    );
    assert_eq!(cmd("shutdown -a guest"), Command::Shutdown(p(Target::All, Wait::No, false)));
    let e = err("shutdown -w");
    assert_eq!((e.status, e.text.as_str()), (1, "You must specify -a or a domain id.\n\n"));
}

#[test]
fn console_options() {
    assert_eq!(
        cmd("console guest"),
        Command::Console { domain: "guest".into(), console: None, number: 0 }
    );
    assert_eq!(
        cmd("console -t vuart -n 2x guest"),
        Command::Console { domain: "guest".into(), console: Some(ConsoleType::Vuart), number: 2 }
    );
    assert_eq!(
        err("console -t ttyS0 guest").text,
        "console type supported are: pv, serial, vuart\n"
    );
    // The bad type is reported where the loop meets it, before a later refused option.
    assert_eq!(
        err("console -t ttyS0 -x guest").text,
        "console type supported are: pv, serial, vuart\n"
    );
}

#[test]
fn vcpu_pin() {
    let Command::VcpuPin { domain, vcpu, hard, soft, force, ignore_masks } =
        cmd("vcpu-pin guest 1 0-1,3 -")
    else {
        panic!()
    };
    assert_eq!(
        (domain.as_str(), vcpu, force, ignore_masks),
        ("guest", VcpuSelect::One(1), false, false)
    );
    assert_eq!(hard.unwrap().cpus(), [0, 1, 3]);
    assert_eq!(soft, None);
    let Command::VcpuPin { vcpu, hard, soft, ignore_masks, .. } = cmd("vcpu-pin -i g all - 2")
    else {
        panic!()
    };
    assert_eq!((vcpu, hard, ignore_masks), (VcpuSelect::All, None, true));
    assert_eq!(soft.unwrap().cpus(), [2]);
    // strtol: digits then anything is that number.
    assert!(matches!(cmd("vcpu-pin g 3x 0"), Command::VcpuPin { vcpu: VcpuSelect::One(3), .. }));
    assert_eq!(err("vcpu-pin g x 0").text, "Error: Invalid argument x as VCPU.\n");
    // getopt takes "-1" for an option; after "--" it reaches the vCPU check.
    assert_eq!(err("vcpu-pin g -1 0").text, "option `1' not supported.\n");
    assert_eq!(err("vcpu-pin g -- -1 0").text, "Error: Invalid argument -1 as VCPU.\n");
    assert_eq!(err("vcpu-pin -f g all 0").text, "Error: --force and 'all' as VCPU not allowed.\n");
    assert_eq!(err("vcpu-pin g 0 5-2").text, "Invalid pcpu range: 5-2.\n");
    assert_eq!(err("vcpu-pin g 0 1 ^all").text, "Can't combine \"^\" and \"all\".\n");
}

#[test]
fn sched_credit2_rules() {
    assert_eq!(
        cmd("sched-credit2 -s -r 200"),
        Command::SchedCredit2(SchedCredit2 {
            schedparam: true,
            ratelimit: Some(200),
            ..Default::default()
        })
    );
    assert_eq!(
        cmd("sched-credit2 -p Pool-0"),
        Command::SchedCredit2(SchedCredit2 {
            cpupool: Some("Pool-0".into()),
            ..Default::default()
        })
    );
    assert_eq!(err("sched-credit2 -w 5").text, "Must specify a domain.\n");
    assert_eq!(err("sched-credit2 -c 5").text, "Must specify a domain.\n");
    assert_eq!(
        err("sched-credit2 -p Pool-0 -d g").text,
        "Specifying a cpupool is not allowed with other options.\n"
    );
    // strtol, then int: text after digits ignored, none is 0, the low 32 bits kept.
    let weight = |w: &str| match cmd(&format!("sched-credit2 -d g -w {w}")) {
        Command::SchedCredit2(s) => s.weight,
        _ => panic!(),
    };
    assert_eq!(weight("12x"), Some(12));
    assert_eq!(weight("x"), Some(0));
    assert_eq!(weight("-1"), Some(-1));
    assert_eq!(weight("4294967297"), Some(1));
}

#[test]
fn memory_sizes() {
    // parse_mem_size_kb: no suffix is MiB.
    let kb = parse_mem_size_kb;
    assert_eq!(kb("512"), Some(512 * 1024));
    assert_eq!(kb("512m"), Some(512 * 1024));
    assert_eq!(kb("512M"), Some(512 * 1024));
    assert_eq!(kb("1g"), Some(1 << 20));
    assert_eq!(kb("1T"), Some(1 << 30));
    assert_eq!(kb("2048k"), Some(2048));
    assert_eq!(kb("1048576b"), Some(1024));
    assert_eq!(kb("1023b"), Some(0));
    assert_eq!(kb(" 7"), Some(7 * 1024));
    assert_eq!(kb(""), Some(0));
    assert_eq!(kb("m"), Some(0));
    assert_eq!(kb("12mb"), None);
    assert_eq!(kb("12x"), None);
    assert_eq!(kb("-1k"), None);
    assert_eq!(kb("-5"), None);
    assert_eq!(
        cmd("mem-set guest 256m"),
        Command::MemSet { domain: "guest".into(), memory: "256m".into(), memory_kb: 262144 }
    );
    assert_eq!(err("mem-set guest lots").text, "invalid memory size: lots\n");
}

#[test]
fn network_devices() {
    let Command::NetworkAttach { domain, vif } =
        cmd("network-attach guest mac=00:16:3e:01:02:03 bridge=xenbr0")
    else {
        panic!()
    };
    assert_eq!(domain, "guest");
    assert_eq!(vif.get("bridge"), Some("xenbr0"));
    assert_eq!(vif.mac(), Some([0x00, 0x16, 0x3e, 0x01, 0x02, 0x03]));
    assert_eq!(
        err("network-attach guest colour=blue").text,
        "unrecognized argument `colour=blue'\n"
    );
    assert_eq!(err("network-attach guest type=ioemu2").text, "Invalid parameter `type'.\n");
    let detach = |line: &str| match cmd(line) {
        Command::NetworkDetach { device, .. } => device,
        _ => panic!(),
    };
    assert_eq!(detach("network-detach g 2"), NicRef::DevId(2));
    assert_eq!(detach("network-detach g x"), NicRef::DevId(0));
    assert_eq!(
        detach("network-detach g 00:16:3e:00:00:01"),
        NicRef::Mac("00:16:3e:00:00:01".into())
    );
}

#[test]
fn create_arguments() {
    let c = |config_file: &str, extra: &[&str], console, paused, quiet| {
        Command::Create(Create {
            config_file: config_file.into(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            console,
            paused,
            quiet,
        })
    };
    assert_eq!(cmd("create g.cfg"), c("g.cfg", &[], false, false, false));
    assert_eq!(cmd("create g.cfg -c memory=256"), c("g.cfg", &["memory=256"], true, false, false));
    assert_eq!(cmd("create -p -q vcpus=2 g.cfg"), c("g.cfg", &["vcpus=2"], false, true, true));
    assert_eq!(cmd("create -f g.cfg"), c("g.cfg", &[], false, false, false));
    assert_eq!(cmd("create -e -F -d -i g.cfg"), c("g.cfg", &[], false, false, false));
    let e = err("create a.cfg b.cfg");
    assert_eq!((e.status, e.text), (2, help_of("create")));
    let e = err("create memory=256");
    assert_eq!(
        (e.status, e.text.as_str()),
        (6, "Config file not specified and none in save file\n")
    );
    assert_eq!(
        err("create -V g.cfg").text,
        "xl create's VNC viewer (-V, -A) is not supported by Xenolith.\n"
    );
    assert_eq!(
        err("create -n g.cfg").text,
        "xl create -n (dry run) is not supported by Xenolith.\n"
    );
}

#[test]
fn c_numbers() {
    assert_eq!(strtol("  -12ab"), (-12, 5));
    assert_eq!(strtol("x"), (0, 0));
    assert_eq!(strtol("+"), (0, 0));
    assert_eq!(strtol("99999999999999999999"), (i64::MAX, 20));
    assert_eq!(strtol("-99999999999999999999"), (i64::MIN, 21));
    assert_eq!(strtol("-9223372036854775808"), (i64::MIN, 20));
    assert_eq!(strtoul("-1"), (u64::MAX, 2));
    assert_eq!(strtoul("18446744073709551616"), (u64::MAX, 20));
    assert_eq!(atoi("4294967298"), 2);
    assert_eq!(atoi("12:34"), 12);
}
