//! The typed keys: values, defaults, ranges and the errors with their positions.

use xenolith_xlcfg::devices::{parse_vif, Access, CpuList};
use xenolith_xlcfg::{parse_domain, Action, DomainType, ParseError, Parsed};

fn ok(text: &str) -> Parsed {
    parse_domain(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn at(text: &str, line: u32, column: u32, message_part: &str) -> ParseError {
    let e = parse_domain(text).expect_err(text);
    assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
    assert!(e.message.contains(message_part), "{text:?}: {e}");
    e
}

#[test]
fn defaults() {
    let p = ok("name = 'g'\n");
    let c = &p.config;
    assert_eq!(c.name, "g");
    assert_eq!(c.domain_type, DomainType::Pvh);
    assert_eq!((c.memory_mib, c.maxmem_mib), (32, 32));
    assert_eq!((c.vcpus, c.maxvcpus), (1, 1));
    assert_eq!(
        (c.on_poweroff, c.on_reboot, c.on_crash),
        (Action::Destroy, Action::Restart, Action::Destroy)
    );
    assert_eq!((c.weight, c.cap), (256, 0));
    assert_eq!((c.cpus.clone(), c.kernel.clone(), c.cmdline.clone()), (None, None, None));
    assert!(c.vifs.is_empty() && c.disks.is_empty() && c.iomem.is_empty() && c.irqs.is_empty());
    assert!(p.warnings.is_empty());
}

#[test]
fn every_key_read() {
    let p = ok(r#"name = "full"
type = "pvh"
memory = 0x100
maxmem = 0400
vcpus = 2
maxvcpus = 4
cpus = "0-3,^2"
cpus_soft = "all"
kernel = "/k"
ramdisk = "/r"
cmdline = "console=hvc0"
on_poweroff = "preserve"
on_reboot = "rename-restart"
on_crash = "coredump-restart"
cpu_weight = 512
cap = 50
vif = [ 'mac=00:16:3e:01:02:0a, bridge=xenbr0', 'backend=netd,type=vif' ]
disk = [ 'format=raw, vdev=xvdb, access=ro, target=/img,with,commas', '/dev/x,,xvdc,,cdrom' ]
iomem = [ "0x9000,1", "a000,2@b000" ]
irqs = [ 33, "34" ]
dtdev = [ "/soc/uart@9000000" ]
"#);
    let c = &p.config;
    assert_eq!((c.memory_mib, c.maxmem_mib, c.vcpus, c.maxvcpus), (256, 256, 2, 4));
    assert_eq!(c.cpus, Some(CpuList::Cpus(vec![0, 1, 3])));
    assert_eq!(c.cpus_soft, Some(CpuList::All));
    assert_eq!((c.kernel.as_deref(), c.ramdisk.as_deref()), (Some("/k"), Some("/r")));
    assert_eq!(c.cmdline.as_deref(), Some("console=hvc0"));
    assert_eq!(
        (c.on_poweroff, c.on_reboot, c.on_crash),
        (Action::Preserve, Action::RenameRestart, Action::CoredumpRestart)
    );
    assert_eq!((c.weight, c.cap), (512, 50));
    assert_eq!(c.vifs[0].mac(), Some([0x00, 0x16, 0x3e, 0x01, 0x02, 0x0a]));
    assert_eq!(c.vifs[0].get("bridge"), Some("xenbr0"));
    assert_eq!(c.vifs[1].get("backend"), Some("netd"));
    // Written back, each entry reads as itself.
    assert_eq!(c.vifs[0].spec(), "mac=00:16:3e:01:02:0a,bridge=xenbr0");
    for vif in &c.vifs {
        assert_eq!(&parse_vif(&vif.spec()).unwrap().0, vif);
    }
    let flagged = parse_vif("trusted,backend=nb").unwrap().0;
    assert_eq!(parse_vif(&flagged.spec()).unwrap().0, flagged);
    assert_eq!(c.disks[0].target.as_deref(), Some("/img,with,commas"));
    assert_eq!((c.disks[0].vdev.as_str(), c.disks[0].access), ("xvdb", Access::ReadOnly));
    assert_eq!(
        (c.disks[1].vdev.as_str(), c.disks[1].cdrom, c.disks[1].access),
        ("xvdc", true, Access::ReadOnly)
    );
    assert_eq!((c.iomem[0].start, c.iomem[0].pages, c.iomem[0].gfn), (0x9000, 1, None));
    assert_eq!((c.iomem[1].start, c.iomem[1].pages, c.iomem[1].gfn), (0xa000, 2, Some(0xb000)));
    assert_eq!(c.irqs, [33, 34]);
    assert_eq!(c.dtdevs, ["/soc/uart@9000000"]);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn name_is_mandatory() {
    at("memory = 64\n", 2, 1, "mandatory key `name' is missing");
    at("name = ''\n", 1, 8, "`name' is empty");
    at("name = [ 'a' ]\n", 1, 8, "is a list but should be a single value");
}

#[test]
fn type_prefixes_and_arm() {
    let p = ok("name = 'g'\ntype = 'pv'\n");
    assert_eq!(p.config.domain_type, DomainType::Pvh);
    assert_eq!((p.warnings[0].line, p.warnings[0].column), (2, 8));
    assert!(p.warnings[0].message.contains("Converting PV guest to PVH"));
    assert!(ok("name = 'g'\ntype = 'pvh'\n").warnings.is_empty());
    assert_eq!(ok("name = 'g'\ntype = 'p'\n").warnings.len(), 1, "xl's strncmp takes `p' as pv");
    at("name = 'g'\ntype = 'hvm'\n", 2, 8, "Unsupported Arm guest type hvm");
    at("name = 'g'\ntype = 'h'\n", 2, 8, "Unsupported Arm guest type hvm");
    at("name = 'g'\ntype = 'xen'\n", 2, 8, "Invalid domain type xen.");
    at("name = 'g'\ntype = 'pvhx'\n", 2, 8, "Invalid domain type pvhx.");
}

#[test]
fn memory_ranges() {
    at("name = 'g'\nmemory = 0\n", 2, 10, "`memory' is 0, outside 1..=1048576");
    at("name = 'g'\nmemory = 1048577\n", 2, 10, "outside");
    at("name = 'g'\nmemory = '-5'\n", 2, 10, "outside");
    at("name = 'g'\nmemory = 12abc\n", 2, 10, "could not be parsed as a number: Invalid argument");
    at("name = 'g'\nmemory = 99999999999999999999\n", 2, 10, "Numerical result out of range");
    at("name = 'g'\nmemory = 09\n", 2, 10, "could not be parsed");
    at("name = 'g'\nmemory = 64\nmemory += 1\n", 3, 11, "can't use += with numbers");
    at("name = 'g'\nmemory = 128\nmaxmem = 64\n", 3, 10, "maxmem (64) is less than memory (128)");
    let p = ok("name = 'g'\nmemory = '128'\nmaxmem = 256\n");
    assert_eq!((p.config.memory_mib, p.config.maxmem_mib), (128, 256));
    assert_eq!(ok("name='g'; maxmem = 64").config.memory_mib, 32);
}

#[test]
fn vcpu_ranges() {
    assert_eq!(ok("name = 'g'\nvcpus = 0\n").config.vcpus, 1, "xl turns vcpus < 1 into 1");
    at("name = 'g'\nvcpus = 129\n", 2, 9, "outside");
    at("name = 'g'\nvcpus = 4\nmaxvcpus = 2\n", 3, 12, "maxvcpus (2) is less than vcpus (4)");
    at("name = 'g'\nmaxvcpus = 0\n", 2, 12, "outside 1..=128");
}

#[test]
fn scheduler_ranges() {
    at("name = 'g'\ncpu_weight = 0\n", 2, 14, "outside 1..=65535");
    at("name = 'g'\ncpu_weight = 65536\n", 2, 14, "outside 1..=65535");
    assert_eq!(ok("name = 'g'\ncpu_weight = 65535\n").config.weight, 65535);
    at("name = 'g'\ncap = '-1'\n", 2, 7, "outside 0..=");
    let p = ok("name = 'g'\nweight = 10\n");
    assert_eq!(p.config.weight, 256);
    assert!(p.warnings[0].message.contains("xl's key is `cpu_weight'"));
}

#[test]
fn cpu_lists() {
    at("name = 'g'\ncpus = '3-1'\n", 2, 8, "range start is above its end");
    at("name = 'g'\ncpus = 'x'\n", 2, 8, "not a CPU number");
    at("name = 'g'\ncpus = '1024'\n", 2, 8, "out of range 0-1023");
    at("name = 'g'\ncpus_soft = 'nodes:0'\n", 2, 13, "NUMA");
    at("name = 'g'\ncpus = [ '0', '1' ]\n", 2, 8, "per-vCPU list is not supported");
    assert_eq!(
        ok("name = 'g'\ncpus = 'all,^0'\n").config.cpus,
        Some(CpuList::Cpus((1..=1023).collect()))
    );
}

#[test]
fn actions() {
    at(
        "name = 'g'\non_crash = 'explode'\n",
        2,
        12,
        "Unknown on_crash action \"explode\" specified",
    );
    at("name = 'g'\non_reboot = 'Restart'\n", 2, 13, "Unknown on_reboot action");
    at("name = 'g'\non_poweroff = 1\n", 2, 15, "Unknown on_poweroff action \"1\"");
    assert_eq!(
        ok("name = 'g'\non_poweroff = 'soft-reset'\n").config.on_poweroff,
        Action::SoftReset
    );
    assert_eq!(
        ok("name = 'g'\non_crash = 'coredump-destroy'\n").config.on_crash,
        Action::CoredumpDestroy
    );
}

#[test]
fn command_line() {
    assert_eq!(
        ok("name='g'\nroot='/dev/xvda1 ro'\nextra='quiet'\n").config.cmdline.as_deref(),
        Some("root=/dev/xvda1 ro quiet")
    );
    assert_eq!(
        ok("name='g'\nroot='/dev/xvda1'\n").config.cmdline.as_deref(),
        Some("root=/dev/xvda1")
    );
    assert_eq!(ok("name='g'\nextra='quiet'\n").config.cmdline.as_deref(), Some("quiet"));
    let p = ok("name='g'\nextra='quiet'\ncmdline='x'\n");
    assert_eq!(p.config.cmdline.as_deref(), Some("x"));
    assert_eq!((p.warnings[0].line, p.warnings[0].column), (3, 9));
    assert!(p.warnings[0].message.contains("ignoring root= and extra= in favour of cmdline="));
}

#[test]
fn vif_specs() {
    at("name='g'\nvif = [ '', 'mac=00:16:3e:zz:00:00' ]\n", 2, 13, "Invalid parameter `mac'");
    at("name='g'\nvif = [ 'mac=00:16:3e:00:00' ]\n", 2, 9, "Invalid parameter `mac'");
    at("name='g'\nvif = [ 'type=tap' ]\n", 2, 9, "Invalid parameter `type'.");
    at("name='g'\nvif = 'bridge=x'\n", 2, 7, "is a single value but should be a list");
    let p = ok("name='g'\nvif = [ 'bridge=b,,  colour=red' ]\n");
    assert_eq!(p.config.vifs[0].get("bridge"), Some("b"));
    assert_eq!((p.warnings[0].line, p.warnings[0].column), (2, 9));
    assert_eq!(p.warnings[0].message, "unrecognized argument `colour=red'");
}

#[test]
fn disk_specs() {
    let d = &ok("name='g'\ndisk = [ '/dev/vg/guest-volume,,hda' ]\n").config.disks[0];
    assert_eq!(
        (d.target.as_deref(), d.format.as_str(), d.vdev.as_str(), d.access),
        (Some("/dev/vg/guest-volume"), "raw", "hda", Access::ReadWrite)
    );
    let d = &ok("name='g'\ndisk = [ '/root/image.iso,raw,hdc,devtype=cdrom' ]\n").config.disks[0];
    assert!(d.cdrom && d.access == Access::ReadOnly);
    let d = &ok("name='g'\ndisk = [ 'vdev=xvda, backend=blk, /img' ]\n").config.disks[0];
    assert_eq!(
        (d.target.as_deref(), d.other.clone()),
        (Some("/img"), vec![("backend".into(), "blk".into())])
    );
    at("name='g'\ndisk = [ '/img' ]\n", 2, 10, "no vdev specified");
    at("name='g'\ndisk = [ ',raw,xvda' ]\n", 2, 10, "no target specified");
    at("name='g'\ndisk = [ '/img,vmdk,xvda' ]\n", 2, 10, "unknown disk format `vmdk'");
    at("name='g'\ndisk = [ '/img,raw,xvda,rx' ]\n", 2, 10, "unknown access `rx'");
    at("name='g'\ndisk = [ '/img,raw,xvda,rw,extra' ]\n", 2, 10, "too many positional parameters");
    at("name='g'\ndisk = [ '/img,raw,xvda,vdev=xvdb' ]\n", 2, 10, "parameter `vdev' given twice");
    at("name='g'\ndisk = [ 'raw:/img,xvda,w' ]\n", 2, 10, "deprecated `format:target'");
}

#[test]
fn passthrough_lists() {
    at("name='g'\nirqs = [ 33, 0x21 ]\n", 2, 14, "Invalid argument parsing irq: 0x21");
    at("name='g'\nirqs = [ 4294967295 ]\n", 2, 10, "irq 4294967295 too big");
    at("name='g'\niomem = [ '9000' ]\n", 2, 11, "Invalid argument parsing iomem: 9000");
    at("name='g'\niomem = [ '9000,1@' ]\n", 2, 11, "Invalid argument parsing iomem");
    at("name='g'\niomem = [ 'g000,1' ]\n", 2, 11, "Invalid argument parsing iomem");
    at("name='g'\ndtdev = '/soc'\n", 2, 9, "is a single value but should be a list");
    at("name='g'\ndtdev = [ [ '/soc' ] ]\n", 2, 11, "a list item is itself a list");
}

#[test]
fn unknown_keys_are_warnings_once_each() {
    let p = ok("name='g'\nsdl = 1\nsdl = 0\nvnc = 1\n");
    let w: Vec<_> = p.warnings.iter().map(|w| (w.line, w.column, w.message.as_str())).collect();
    assert_eq!(
        w,
        [
            (2, 1, "key `sdl' is not used by Xenolith and ignored"),
            (4, 1, "key `vnc' is not used by Xenolith and ignored")
        ]
    );
}

#[test]
fn syntax_errors_come_through() {
    let e = at("name='g'\nmemory = 64M\n", 2, 12, "lexical error near `M'");
    assert_eq!(e.to_string(), "config:2:12: lexical error near `M'");
}
