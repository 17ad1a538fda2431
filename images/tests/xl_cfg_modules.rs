//! The xl.cfg text the bundle carries for each domain the control domain creates at run time
//! (`boot = false`, module `<name>.cfg`): `xenolith_xlcfg::parse_domain`, the parser the control
//! domain reads it with, gives back every value of the manifest's domain, without a warning.
//!
//! Each test reads a manifest (or, for command lines no TOML file needs, builds a domain), writes
//! its text with `Domain::xl_cfg`, parses it back and compares field by field ([`round_trip`]);
//! values are also spelled out, so that the writer and the comparison cannot agree on a mistake.
//! That packing puts these modules into the bundle is checked in `tests/bundle.rs`.

use std::path::Path;

use xenolith_abi::bundle::{RestartPolicy, ShutdownAction, ShutdownActions, AFFINITY_ALL};
use xenolith_images::manifest::{Domain, DomainSource, Manifest, Position};
use xenolith_xlcfg::devices::CpuList;
use xenolith_xlcfg::{parse_domain, Action, DomainConfig, DomainType};

/// Writes `files` (path relative to a fresh directory named `test`, text) and loads `system.toml`
/// there.
fn load(test: &str, files: &[(&str, &str)]) -> Manifest {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xl-cfg-modules").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("creating a directory");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    let manifest = Manifest::load(&dir.join("system.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.warnings, [], "the manifests here give no cause for remarks");
    manifest
}

/// A manifest of `domains` (`[[domain]]` tables) and nothing else.
fn load_domains(test: &str, domains: &str) -> Manifest {
    load(test, &[("system.toml", &format!("[system]\nname = \"x\"\n{domains}"))])
}

/// The affinity mask an xl CPU list means (absent: every CPU).
fn mask(list: &Option<CpuList>) -> u64 {
    match list {
        None => AFFINITY_ALL,
        Some(CpuList::All) => panic!("\"all\" is written by leaving the key out"),
        Some(CpuList::Cpus(cpus)) => cpus.iter().fold(0, |mask, &cpu| {
            assert!(cpu < 64, "CPU {cpu} is not an affinity bit");
            mask | 1 << cpu
        }),
    }
}

/// The manifest's word for xl's action.
fn action(action: Action) -> ShutdownAction {
    match action {
        Action::Destroy => ShutdownAction::Destroy,
        Action::Restart => ShutdownAction::Restart,
        Action::Preserve => ShutdownAction::Preserve,
        other => panic!("{other:?} is not a manifest's action"),
    }
}

/// Writes `domain`'s xl.cfg text, parses it back as the control domain does, checks that every
/// value equals the domain's and that nothing else is set, and returns what was parsed.
#[track_caller]
fn round_trip(domain: &Domain) -> DomainConfig {
    let text = domain.xl_cfg();
    let parsed = parse_domain(&text).unwrap_or_else(|e| panic!("{e} in:\n{text}"));
    assert_eq!(parsed.warnings, [], "in:\n{text}");
    let config = parsed.config;
    let memory = u64::from(domain.memory_mib);
    let actions = domain.on_shutdown;
    assert_eq!(config.name, domain.name, "in:\n{text}");
    assert_eq!(config.domain_type, DomainType::Pvh, "in:\n{text}");
    assert_eq!((config.memory_mib, config.maxmem_mib), (memory, memory), "in:\n{text}");
    assert_eq!((config.vcpus, config.maxvcpus), (domain.vcpus, domain.vcpus), "in:\n{text}");
    assert_eq!(config.kernel, Some(domain.source.module_name()), "in:\n{text}");
    let ramdisk = domain.ramdisk.as_ref().map(DomainSource::module_name);
    assert_eq!(config.ramdisk, ramdisk, "in:\n{text}");
    assert_eq!(config.cmdline.as_deref(), Some(domain.cmdline.as_str()), "in:\n{text}");
    assert_eq!((config.weight, config.cap), (domain.weight, u32::from(domain.cap)), "in:\n{text}");
    assert_eq!(mask(&config.cpus), domain.hard_affinity, "in:\n{text}");
    assert_eq!(mask(&config.cpus_soft), domain.soft_affinity, "in:\n{text}");
    assert_eq!(
        [config.on_poweroff, config.on_reboot, config.on_crash].map(action),
        [actions.poweroff, actions.reboot, actions.crash],
        "in:\n{text}"
    );
    let vifs: Vec<String> = config.vifs.iter().map(|vif| vif.spec()).collect();
    assert_eq!(vifs, domain.vifs, "in:\n{text}");
    assert!(
        config.disks.is_empty()
            && config.iomem.is_empty()
            && config.irqs.is_empty()
            && config.dtdevs.is_empty(),
        "no other devices in:\n{text}"
    );
    config
}

/// A domain not built at boot, its image the program `test-guest`, with the manifest's defaults
/// and `cmdline`: for command lines a TOML file need not hold.
fn program_domain(cmdline: &str) -> Domain {
    let at = Position { line: 1, column: 1 };
    Domain {
        name: "guest".to_owned(),
        source: DomainSource::Program { name: "test-guest".to_owned(), at },
        memory_mib: 16,
        vcpus: 1,
        capabilities: Vec::new(),
        weight: 256,
        cap: 0,
        hard_affinity: AFFINITY_ALL,
        soft_affinity: AFFINITY_ALL,
        on_shutdown: ShutdownActions::XL_DEFAULT,
        preserved_kib: 0,
        boot: false,
        cmdline: cmdline.to_owned(),
        ramdisk: None,
        passthrough: Default::default(),
        vifs: Vec::new(),
        vuart: false,
        disks: Vec::new(),
        virtio_net: false,
    }
}

#[test]
fn a_program_domain_with_defaults() {
    let manifest = load_domains(
        "program",
        "[[domain]]\nname = \"child\"\nprogram = \"test-guest\"\nmemory = 16\nboot = false\n",
    );
    let domain = &manifest.domains[0];
    // The whole text, to show its form: every key, `cpus` and `cpus_soft` left out for "all".
    assert_eq!(
        domain.xl_cfg(),
        "# Domain `child`, written by the host tool for the control domain's `xl create`: kernel \
         and ramdisk are boot bundle modules.\n\
         name = \"child\"\nmemory = 16\nvcpus = 1\nkernel = \"test-guest\"\nextra = \"\"\n\
         cpu_weight = 256\ncap = 0\non_poweroff = \"destroy\"\non_reboot = \"restart\"\n\
         on_crash = \"destroy\"\n"
    );
    let config = round_trip(domain);
    assert_eq!((config.name.as_str(), config.kernel.as_deref()), ("child", Some("test-guest")));
    assert_eq!((config.memory_mib, config.vcpus, config.ramdisk), (16, 1, None));
    assert_eq!((config.cpus, config.cpus_soft), (None, None));
    assert_eq!(domain.xl_cfg_module_name(), "child.cfg");
}

#[test]
fn a_debian_kernel_and_ramdisk_domain() {
    let manifest = load_domains(
        "debian",
        "[[domain]]\nname = \"linux\"\nkernel = \"debian:linux-image-arm64\"\n\
         ramdisk = \"debian:busybox-initramfs\"\nmemory = \"256M\"\nvcpus = 2\n\
         root = \"/dev/ram0\"\nextra = \"console=hvc0 earlycon=xenboot\"\nboot = false\n",
    );
    let config = round_trip(&manifest.domains[0]);
    assert_eq!(config.kernel.as_deref(), Some("debian:linux-image-arm64"));
    assert_eq!(config.ramdisk.as_deref(), Some("debian:busybox-initramfs"));
    assert_eq!(config.cmdline.as_deref(), Some("root=/dev/ram0 console=hvc0 earlycon=xenboot"));
    assert_eq!((config.memory_mib, config.vcpus), (256, 2));
}

#[test]
fn a_domain_from_an_xl_cfg_file_is_written_whole_with_module_names() {
    // The file's kernel and ramdisk are relative to it; the text names their modules (relative
    // to the manifest), and says everything the file left to xl's defaults or the manifest.
    let cfg = "name = \"from-xl\"\nmemory = 64\nmaxmem = 64\nvcpus = 2\ncpus = \"1-2\"\n\
               kernel = \"boot/Image\"\nramdisk = \"boot/initrd\"\n\
               cmdline = \"console=hvc0 quiet\"\non_crash = \"preserve\"\n";
    let manifest = load(
        "from-xl",
        &[
            ("guests/from-xl.cfg", cfg),
            ("guests/boot/Image", "ARM"),
            ("guests/boot/initrd", "070701"),
            (
                "system.toml",
                "[system]\nname = \"x\"\n[[domain]]\nxl = \"guests/from-xl.cfg\"\n\
                 restart = \"always\"\nboot = false\n",
            ),
        ],
    );
    let domain = &manifest.domains[0];
    let text = domain.xl_cfg();
    assert!(text.contains("\nkernel = \"guests/boot/Image\"\n"), "{text}");
    assert!(!text.contains("\"boot/") && !text.contains("from-xl.cfg"), "{text}");
    assert!(!text.contains("maxmem") && !text.contains("cmdline"), "{text}");
    let config = round_trip(domain);
    assert_eq!(config.kernel.as_deref(), Some("guests/boot/Image"));
    assert_eq!(config.ramdisk.as_deref(), Some("guests/boot/initrd"));
    assert_eq!(config.cmdline.as_deref(), Some("console=hvc0 quiet"));
    assert_eq!(config.cpus, Some(CpuList::Cpus(vec![1, 2])));
    // `restart = "always"` from the manifest, then the file's `on_crash`.
    assert_eq!(
        (config.on_poweroff, config.on_reboot, config.on_crash),
        (Action::Restart, Action::Restart, Action::Preserve)
    );
    assert_eq!((config.memory_mib, config.vcpus, config.weight), (64, 2, 256));
}

#[test]
fn command_lines_with_quotes_backslashes_and_spaces_round_trip() {
    // TOML multi-line literal strings: what is between the quotes is the command line.
    let lines = [
        r#"init=/bin/sh -c "echo 'hi there'; exit""#,
        r#"path=C:\dir\ twice\\ trailing\"#,
        r#"  leading and  double  spaces  "#,
        r#"x="" y='' z=\"#,
        r#"# not a comment; nor=this"#,
    ];
    let domains: String = lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            format!(
                "[[domain]]\nname = \"g{index}\"\nprogram = \"test-guest\"\nmemory = 16\n\
                 boot = false\ncmdline = '''{line}'''\n"
            )
        })
        .collect();
    let manifest = load_domains("cmdline", &domains);
    for (domain, line) in manifest.domains.iter().zip(lines) {
        assert_eq!(round_trip(domain).cmdline.as_deref(), Some(line));
    }
    // Backslash and quote escaped, nothing else.
    assert!(manifest.domains[1]
        .xl_cfg()
        .contains(r#"extra = "path=C:\\dir\\ twice\\\\ trailing\\""#));
}

#[test]
fn any_command_line_round_trips() {
    // Every ASCII character, control characters included (a newline must not end the string),
    // and some beyond ASCII.
    let every_ascii: String = (0u8..0x80).map(char::from).collect();
    for line in
        [every_ascii.as_str(), "\n", "a\nb\r\n", "\\\"", "é ü 雪 🦀", "\t\u{7}\u{8}\u{b}\u{c}"]
    {
        let domain = program_domain(line);
        assert_eq!(round_trip(&domain).cmdline.as_deref(), Some(line), "{line:?}");
        assert_eq!(domain.xl_cfg().lines().count(), 11, "one line a key: {line:?}");
    }
}

#[test]
fn affinity_is_written_as_xl_cpu_lists_when_not_every_cpu() {
    let manifest = load_domains(
        "affinity",
        "[[domain]]\nname = \"a\"\nprogram = \"test-guest\"\nmemory = 16\nboot = false\n\
         cpus = [0, 2, 3, 4, 63]\ncpus_soft = [1]\n\
         [[domain]]\nname = \"b\"\nprogram = \"test-guest\"\nmemory = 16\nboot = false\n\
         cpus = \"all\"\ncpus_soft = [5, 6]\n",
    );
    let [a, b] = &manifest.domains[..] else { panic!("{:?}", manifest.domains) };
    assert!(a.xl_cfg().contains("cpus = \"0,2-4,63\"\ncpus_soft = \"1\"\n"), "{}", a.xl_cfg());
    let config = round_trip(a);
    assert_eq!(config.cpus, Some(CpuList::Cpus(vec![0, 2, 3, 4, 63])));
    assert_eq!(config.cpus_soft, Some(CpuList::Cpus(vec![1])));
    let config = round_trip(b);
    assert_eq!((config.cpus, config.cpus_soft), (None, Some(CpuList::Cpus(vec![5, 6]))));
    assert!(!b.xl_cfg().contains("\ncpus ="), "{}", b.xl_cfg());
}

#[test]
fn weights_and_caps_round_trip() {
    let manifest = load_domains(
        "weights",
        "[[domain]]\nname = \"heavy\"\nprogram = \"test-guest\"\nmemory = 4096\nvcpus = 8\n\
         weight = 65535\ncap = 800\nboot = false\n\
         [[domain]]\nname = \"light\"\nprogram = \"test-guest\"\nmemory = 1\nweight = 1\n\
         cap = 1\nboot = false\n",
    );
    let heavy = round_trip(&manifest.domains[0]);
    assert_eq!((heavy.weight, heavy.cap, heavy.vcpus, heavy.memory_mib), (65535, 800, 8, 4096));
    let light = round_trip(&manifest.domains[1]);
    assert_eq!((light.weight, light.cap, light.vcpus, light.memory_mib), (1, 1, 1, 1));
}

#[test]
fn every_shutdown_action_round_trips() {
    let mut domains = String::new();
    let mut expected = Vec::new();
    for poweroff in ShutdownAction::ALL {
        for reboot in ShutdownAction::ALL {
            for crash in ShutdownAction::ALL {
                let index = expected.len();
                domains += &format!(
                    "[[domain]]\nname = \"d{index}\"\nprogram = \"test-guest\"\nmemory = 16\n\
                     boot = false\non_poweroff = \"{}\"\non_reboot = \"{}\"\non_crash = \"{}\"\n",
                    poweroff.as_str(),
                    reboot.as_str(),
                    crash.as_str()
                );
                expected.push([poweroff, reboot, crash]);
            }
        }
    }
    // And each `restart` shorthand.
    for (index, policy) in ["never", "on-crash", "always"].into_iter().enumerate() {
        domains += &format!(
            "[[domain]]\nname = \"r{index}\"\nprogram = \"test-guest\"\nmemory = 16\n\
             boot = false\nrestart = \"{policy}\"\n"
        );
        let actions = RestartPolicy::parse(policy).expect("a policy").actions();
        expected.push([actions.poweroff, actions.reboot, actions.crash]);
    }
    let manifest = load_domains("actions", &domains);
    assert_eq!(manifest.domains.len(), 30);
    for (domain, expected) in manifest.domains.iter().zip(expected) {
        let config = round_trip(domain);
        let parsed = [config.on_poweroff, config.on_reboot, config.on_crash].map(action);
        assert_eq!(parsed, expected, "{}", domain.name);
    }
}

#[test]
fn vifs_are_written_as_xl_vif_entries() {
    let mut domain = program_domain("");
    domain.vifs = vec![
        "bridge=xenbr0,backend=netback".to_owned(),
        "mac=00:16:3e:00:00:01,trusted".to_owned(),
    ];
    let text = domain.xl_cfg();
    assert!(
        text.ends_with(
            "vif = [\"bridge=xenbr0,backend=netback\", \"mac=00:16:3e:00:00:01,trusted\"]\n"
        ),
        "{text}"
    );
    round_trip(&domain);
}
