//! Xen's own example configurations (`tools/examples/` in Xen's tree, copied unmodified into
//! `tests/fixtures/`), accepted or refused key by key.

use xenolith_xlcfg::devices::Access;
use xenolith_xlcfg::{parse, parse_domain, Action, DomainType};

const PVH: &str = include_str!("fixtures/xlexample.pvhlinux");
const HVM: &str = include_str!("fixtures/xlexample.hvm");

#[test]
fn pvhlinux_is_accepted_key_by_key() {
    let p = parse_domain(PVH).unwrap_or_else(|e| panic!("{e}"));
    let c = &p.config;
    assert_eq!(c.domain_type, DomainType::Pvh);
    assert_eq!(c.name, "example.pvhlinux");
    assert_eq!(c.kernel.as_deref(), Some("/boot/vmlinuz"));
    assert_eq!(c.cmdline.as_deref(), Some("root=/dev/xvda1"), "extra");
    assert_eq!((c.memory_mib, c.maxmem_mib), (512, 512));
    assert_eq!((c.vcpus, c.maxvcpus), (4, 4));
    assert_eq!(c.vifs.len(), 1);
    assert!(c.vifs[0].options.is_empty(), "vif = [ '' ] is one default vif");
    let d = &c.disks[0];
    assert_eq!(
        (d.target.as_deref(), d.format.as_str(), d.vdev.as_str(), d.access),
        (Some("/dev/zvol/tank/guest-volume"), "raw", "xvda", Access::ReadWrite)
    );
    assert_eq!(
        (c.on_poweroff, c.on_reboot, c.on_crash),
        (Action::Destroy, Action::Restart, Action::Destroy)
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn hvm_parses_but_its_type_is_refused() {
    // The syntax is fine: every setting is there.
    let cfg = parse(HVM).unwrap();
    let keys: Vec<_> = cfg.settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["type", "name", "memory", "vcpus", "vif", "disk", "sdl"]);
    // Xenolith runs Arm guests: libxl on Arm refuses HVM, and so do we, at the `type` value.
    let e = parse_domain(HVM).unwrap_err();
    let line = HVM.lines().position(|l| l.starts_with("type")).unwrap() as u32 + 1;
    assert_eq!((e.line, e.column), (line, 8));
    assert!(e.message.contains("Unsupported Arm guest type hvm"), "{e}");
}

#[test]
fn hvm_keys_other_than_type_are_accepted_or_warned() {
    // With its type made PVH, the rest of the HVM example reads: `sdl` (an emulated display)
    // is a key Xenolith does not use, which xl would ignore silently; we warn.
    let text = HVM.replace("type = \"hvm\"", "type = \"pvh\"");
    let p = parse_domain(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (p.config.name.as_str(), p.config.memory_mib, p.config.vcpus),
        ("example.hvm", 128, 2)
    );
    assert_eq!(p.config.disks[0].target.as_deref(), Some("/dev/vg/guest-volume"));
    let sdl = text.lines().position(|l| l.starts_with("sdl")).unwrap() as u32 + 1;
    assert_eq!(p.warnings.len(), 1);
    assert_eq!((p.warnings[0].line, p.warnings[0].column), (sdl, 1));
    assert!(p.warnings[0].message.contains("`sdl'"));
}
