//! System manifests: `images/default.toml` loads, defaults apply, and every broken manifest under
//! `tests/bad/` fails with its exact `file:line:column` and message (after seL4 Microkit's broken
//! `.system` files). A file in `tests/bad/` is named after its error kind (`bad_name.toml`,
//! `bad_name_empty.toml`, ...); `every_bad_manifest_fails_with_the_kind_it_is_named_after` holds the
//! directory to that.
//!
//! Domains from xl.cfg files (`xl = "<file>"`) have their own section: a good file gives the
//! domain its plain manifest gives, remarks are warnings, and each broken one under `tests/bad/`
//! (its xl.cfg files in `tests/bad/xl/`) fails at its exact place, in the xl.cfg file when the
//! mistake is there.
//!
//! Paths are relative: cargo runs integration tests in the package directory (`images/`).

use std::path::{Path, PathBuf};

use xenolith_abi::bundle::{
    Capability, RestartPolicy, ShutdownAction, ShutdownActions, AFFINITY_ALL,
};
use xenolith_images::debian::DebianArtifact;
use xenolith_images::manifest::{
    Domain, DomainSource, ErrorKind, Manifest, ManifestError, ManifestWarning, Position,
    QemuSettings, DEFAULT_CPUS, DEFAULT_MEMORY_MIB,
};
use xenolith_kernel::platform::cmdline::parameters;

const BAD: &str = "tests/bad";

/// Loads `tests/bad/<file>`, which must fail.
fn load_bad(file: &str) -> ManifestError {
    let path = Path::new(BAD).join(file);
    match Manifest::load(&path) {
        Ok(manifest) => panic!("{} loaded, but must fail: {manifest:?}", path.display()),
        Err(error) => error,
    }
}

/// `tests/bad/<file>` fails with `kind` at `line:column`, and its message contains `phrase`.
#[track_caller]
fn assert_bad(file: &str, kind: ErrorKind, line: usize, column: usize, phrase: &str) {
    let error = load_bad(file);
    let text = error.to_string();
    let location = format!("{BAD}/{file}:{line}:{column}: error: ");
    assert!(text.starts_with(&location), "expected {location}..., got: {text}");
    assert!(text.contains(phrase), "expected {phrase:?} in: {text}");
    assert_eq!(error.kind, kind, "{text}");
    assert_eq!((error.line, error.column), (line, column), "{text}");
}

/// `tests/bad/<file>` fails with `kind` at `line:column` of the xl.cfg file `tests/bad/<cfg>`,
/// names the manifest's `xl` value at `xl_line`, column 6, and its message contains `phrase`.
#[track_caller]
fn assert_bad_xl(
    file: &str,
    kind: ErrorKind,
    (cfg, line, column): (&str, usize, usize),
    xl_line: usize,
    phrase: &str,
) {
    let error = load_bad(file);
    let text = error.to_string();
    let location = format!("{BAD}/{cfg}:{line}:{column}: error: ");
    assert!(text.starts_with(&location), "expected {location}..., got: {text}");
    let read_for = format!(" (read for `xl` at {BAD}/{file}:{xl_line}:6)");
    assert!(text.ends_with(&read_for), "expected ...{read_for}, got: {text}");
    assert!(text.contains(phrase), "expected {phrase:?} in: {text}");
    assert_eq!(error.kind, kind, "{text}");
    assert_eq!(error.path, Path::new(BAD).join(cfg), "{text}");
    let xl_key = (Path::new(BAD).join(file), Position { line: xl_line, column: 6 });
    assert_eq!(error.xl_key, Some(xl_key), "{text}");
}

/// A manifest given as text.
fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(Path::new("inline.toml"), text)
}

// ---- Good manifests --------------------------------------------------------------------------------

#[test]
fn default_manifest_loads() {
    let manifest = Manifest::load(Path::new("default.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.path, PathBuf::from("default.toml"));
    assert_eq!(manifest.system.name, "default");
    assert_eq!(manifest.hypervisor.cmdline, "loglvl=info heartbeat=10");
    assert_eq!(manifest.qemu, QemuSettings { cpus: 4, memory_mib: 1024 });
    let names: Vec<&str> = manifest.domains.iter().map(|domain| domain.name.as_str()).collect();
    assert_eq!(names, ["xenstore", "hello", "worker", "ping", "pong", "console", "control"]);
    for (index, kib) in [(0, 1024), (5, 64)] {
        let service = &manifest.domains[index];
        assert_eq!(
            (service.on_shutdown, service.preserved_kib),
            (RestartPolicy::OnCrash.actions(), kib)
        );
    }
    // The control domain comes back whatever stopped it, keeping nothing (issue 16).
    let control = &manifest.domains[6];
    assert_eq!((control.on_shutdown, control.preserved_kib), (RestartPolicy::Always.actions(), 0));
}

#[test]
fn defaults_apply_when_hypervisor_and_qemu_are_absent() {
    let manifest = parse("[system]\nname = \"minimal\"\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.system.name, "minimal");
    assert_eq!(manifest.hypervisor.cmdline, "");
    assert_eq!(manifest.qemu, QemuSettings { cpus: DEFAULT_CPUS, memory_mib: DEFAULT_MEMORY_MIB });
    assert_eq!(manifest.qemu, QemuSettings { cpus: 2, memory_mib: 1024 });
}

#[test]
fn defaults_apply_to_empty_tables() {
    let manifest =
        parse("[system]\nname = \"x\"\n[hypervisor]\n[qemu]\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.hypervisor.cmdline, "");
    assert_eq!(manifest.qemu, QemuSettings::default());
}

#[test]
fn memory_sizes_parse() {
    for (memory, mib) in [
        ("\"512M\"", 512),
        ("\"1G\"", 1024),
        ("\"2048\"", 2048),
        ("2048", 2048),
        ("\"262144K\"", 256),
        ("\"64G\"", 64 * 1024),
        ("'3G'", 3 * 1024),
    ] {
        let text = format!("[system]\nname = \"x\"\n[qemu]\nmemory = {memory}\n");
        let manifest = parse(&text).unwrap_or_else(|e| panic!("memory = {memory}: {e}"));
        assert_eq!(manifest.qemu.memory_mib, mib, "memory = {memory}");
    }
}

#[test]
fn names_may_use_letters_digits_underscore_and_dash() {
    let name = format!("Ab_9-{}", "z".repeat(59)); // 64 characters
    let manifest =
        parse(&format!("[system]\nname = \"{name}\"\n")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.system.name, name);
}

#[test]
fn cpus_range_ends_are_accepted() {
    for cpus in [1, 16] {
        let text = format!("[system]\nname = \"x\"\n[qemu]\ncpus = {cpus}\n");
        assert_eq!(parse(&text).unwrap_or_else(|e| panic!("{e}")).qemu.cpus, cpus);
    }
}

// ---- Domains -----------------------------------------------------------------------------------------

const SYSTEM: &str = "[system]\nname = \"x\"\n";

/// The one domain of `[system]` plus `domain` (the lines of a `[[domain]]` table after its header).
fn one_domain(domain: &str) -> Result<Domain, ManifestError> {
    let manifest = parse(&format!("{SYSTEM}[[domain]]\n{domain}"))?;
    assert_eq!(manifest.domains.len(), 1);
    Ok(manifest.domains.into_iter().next().expect("one domain"))
}

#[test]
fn domain_defaults() {
    let domain = one_domain("name = \"guest1\"\nprogram = \"test-guest\"\nmemory = 16\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = Domain {
        name: "guest1".into(),
        source: DomainSource::Program {
            name: "test-guest".into(),
            at: Position { line: 5, column: 11 },
        },
        memory_mib: 16,
        vcpus: 1,
        capabilities: vec![],
        weight: 256,
        cap: 0,
        hard_affinity: AFFINITY_ALL,
        soft_affinity: AFFINITY_ALL,
        on_shutdown: ShutdownActions::XL_DEFAULT,
        preserved_kib: 0,
        boot: true,
        cmdline: String::new(),
        ramdisk: None,
        passthrough: Default::default(),
        vifs: Vec::new(),
        vuart: false,
        disks: Vec::new(),
        virtio_net: false,
    };
    assert_eq!(domain, expected);
}

#[test]
fn domain_with_every_key() {
    let text = format!(
        "{SYSTEM}
[[domain]]
name = \"guest1\"
program = \"test-guest\"
memory = \"1G\"
vcpus = 8
capabilities = []
weight = 65535
cap = 800
cpus = [0, 2, 63]
cpus_soft = [2]
restart = \"on-crash\"
boot = false
cmdline = \"console=hvc0 root=/dev/xvda\"

[[domain]]
name = \"dm-1\"
program = \"dm-tool\"
memory = 4096
capabilities = [\"control\", \"xenstore\", \"console\", \"dm:guest1\", \"hardware:uart@9000000\",
                \"introspect:guest1\", \"dm:late\"]
weight = 1
cap = 1
restart = \"always\"
preserved_kib = 1024

[[domain]]
name = \"late\"
program = \"test-guest\"
memory = 1
"
    );
    let manifest = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let [guest, dm, late] = &manifest.domains[..] else { panic!("{:?}", manifest.domains) };
    assert_eq!((guest.memory_mib, guest.vcpus, guest.weight, guest.cap), (1024, 8, 65535, 800));
    assert_eq!(guest.hard_affinity, 1 | 1 << 2 | 1 << 63);
    assert_eq!(guest.soft_affinity, 1 << 2);
    assert_eq!((guest.on_shutdown, guest.boot), (RestartPolicy::OnCrash.actions(), false));
    assert_eq!(guest.cmdline, "console=hvc0 root=/dev/xvda");
    assert_eq!((dm.memory_mib, dm.weight, dm.cap), (4096, 1, 1));
    assert_eq!(dm.on_shutdown, RestartPolicy::Always.actions());
    assert_eq!((dm.preserved_kib, guest.preserved_kib), (1024, 0));
    assert_eq!(
        dm.capabilities().collect::<Vec<_>>(),
        [
            Capability::Control,
            Capability::Xenstore,
            Capability::Console,
            Capability::DeviceModel { target: "guest1" },
            Capability::Hardware { device: "uart@9000000" },
            Capability::Introspect { target: "guest1" },
            Capability::DeviceModel { target: "late" },
        ]
    );
    assert_eq!(late.memory_mib, 1);
    assert_eq!(late.source.module_name(), "test-guest");
    assert_eq!(late.source.position(), Position { line: 31, column: 11 });
}

#[test]
fn image_paths_are_relative_to_the_manifest() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("manifest-image-paths");
    std::fs::create_dir_all(dir.join("guests")).expect("creating the test directory");
    std::fs::write(dir.join("guests/guest.elf"), b"\x7fELF").expect("writing the image");
    let path = dir.join("system.toml");
    let text =
        format!("{SYSTEM}[[domain]]\nname = \"g\"\nimage = \"guests/guest.elf\"\nmemory = 2\n");
    std::fs::write(&path, text).expect("writing the manifest");
    let manifest = Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let expected = DomainSource::Image {
        key: "image",
        written: "guests/guest.elf".into(),
        path: dir.join("guests/guest.elf"),
        at: Position { line: 5, column: 9 },
    };
    assert_eq!(manifest.domains[0].source, expected);
    assert_eq!(manifest.domains[0].source.module_name(), "guests/guest.elf");
}

#[test]
fn cpus_all_is_every_cpu() {
    let domain = one_domain(
        "name = \"g\"\nprogram = \"p\"\nmemory = 1\ncpus = \"all\"\ncpus_soft = [63, 0]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((domain.hard_affinity, domain.soft_affinity), (u64::MAX, 1 << 63 | 1));
}

#[test]
fn a_cap_scales_with_vcpus() {
    let base = "name = \"g\"\nprogram = \"p\"\nmemory = 1\n";
    assert_eq!(one_domain(&format!("{base}vcpus = 3\ncap = 300\n")).map(|d| d.cap).ok(), Some(300));
    let error = one_domain(&format!("{base}vcpus = 3\ncap = 301\n")).expect_err("too high");
    assert_eq!(error.kind, ErrorKind::CapOutOfRange);
    assert!(error.message.contains("with 3 vCPUs a cap is 1 to 300"), "{error}");
}

#[test]
fn parse_all_reports_errors_of_every_domain() {
    let text = format!(
        "{SYSTEM}[[domain]]\nname = \"a\"\nprogram = \"p\"\nmemory = 0\nvcpus = 9\n\
         [[domain]]\nname = \"a\"\nprogram = \"p\"\nmemory = 1\ncapabilities = [\"dm:zz\"]\n"
    );
    let errors = Manifest::parse_all(Path::new("inline.toml"), &text).expect_err("four errors");
    let found: Vec<_> = errors.iter().map(|e| (e.kind, e.line, e.column)).collect();
    assert_eq!(
        found,
        [
            (ErrorKind::MemoryOutOfRange, 6, 10),
            (ErrorKind::VcpusOutOfRange, 7, 9),
            (ErrorKind::DuplicateDomain, 9, 8),
            (ErrorKind::CapabilityTarget, 12, 17),
        ]
    );
}

// ---- One broken manifest per error kind -------------------------------------------------------------

#[test]
fn io_missing_file() {
    let path = Path::new(BAD).join("does-not-exist.toml");
    let error = Manifest::load(&path).expect_err("a missing file must fail");
    assert_eq!(error.kind, ErrorKind::Io);
    assert_eq!(
        error.to_string(),
        "tests/bad/does-not-exist.toml: error: cannot read the manifest; check that the file \
         exists and is readable UTF-8 text"
    );
    let source = std::error::Error::source(&error).expect("the I/O error is the source");
    let io = source.downcast_ref::<std::io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn syntax() {
    assert_bad("syntax.toml", ErrorKind::Syntax, 3, 16, "invalid TOML");
}

#[test]
fn syntax_duplicate_key() {
    assert_bad("syntax_duplicate_key.toml", ErrorKind::Syntax, 4, 1, "duplicate key `name`");
}

#[test]
fn unknown_key() {
    assert_bad(
        "unknown_key.toml",
        ErrorKind::UnknownKey,
        6,
        1,
        "unknown key `cpu` (expected `cpus`",
    );
}

#[test]
fn unknown_key_table() {
    assert_bad("unknown_key_table.toml", ErrorKind::UnknownKey, 5, 2, "unknown key `qemus`");
}

#[test]
fn missing_key() {
    assert_bad(
        "missing_key.toml",
        ErrorKind::MissingKey,
        2,
        1,
        "[system] is missing the required key `name`",
    );
}

#[test]
fn missing_key_table() {
    assert_bad("missing_key_table.toml", ErrorKind::MissingKey, 1, 1, "no [system] table");
}

#[test]
fn wrong_type() {
    assert_bad(
        "wrong_type.toml",
        ErrorKind::WrongType,
        6,
        8,
        "expected a whole number of CPUs (such as 4), found string \"4\"",
    );
}

#[test]
fn wrong_type_table() {
    assert_bad("wrong_type_table.toml", ErrorKind::WrongType, 2, 10, "expected a [system] table");
}

#[test]
fn bad_name() {
    // Points at the space itself.
    assert_bad("bad_name.toml", ErrorKind::BadName, 3, 11, "contains ' ', which is not allowed");
}

#[test]
fn bad_name_empty() {
    assert_bad("bad_name_empty.toml", ErrorKind::BadName, 3, 8, "the system name is empty");
}

#[test]
fn bad_name_too_long() {
    // Points at the 65th character.
    assert_bad("bad_name_too_long.toml", ErrorKind::BadName, 3, 73, "65 characters long");
}

#[test]
fn cpus_out_of_range() {
    assert_bad("cpus_out_of_range.toml", ErrorKind::CpusOutOfRange, 6, 8, "`cpus` is 17");
}

#[test]
fn cpus_out_of_range_zero() {
    assert_bad("cpus_out_of_range_zero.toml", ErrorKind::CpusOutOfRange, 6, 8, "1 to 16 CPUs");
}

#[test]
fn bad_memory_size() {
    assert_bad(
        "bad_memory_size.toml",
        ErrorKind::BadMemorySize,
        6,
        10,
        "\"1.5G\", which is not a size",
    );
}

#[test]
fn memory_not_whole_mib() {
    assert_bad(
        "memory_not_whole_mib.toml",
        ErrorKind::MemoryNotWholeMib,
        6,
        10,
        "not a whole number of MiB",
    );
}

#[test]
fn memory_out_of_range() {
    assert_bad(
        "memory_out_of_range.toml",
        ErrorKind::MemoryOutOfRange,
        6,
        10,
        "\"128M\", outside the supported 256M to 64G",
    );
}

#[test]
fn memory_out_of_range_mib() {
    assert_bad(
        "memory_out_of_range_mib.toml",
        ErrorKind::MemoryOutOfRange,
        6,
        10,
        "65537, outside",
    );
}

#[test]
fn bad_cmdline() {
    // Points at `frobnicate` inside the string.
    assert_bad(
        "bad_cmdline.toml",
        ErrorKind::BadCmdline,
        6,
        24,
        "`frobnicate` is not a hypervisor parameter",
    );
}

#[test]
fn bad_cmdline_value() {
    // Points at the value `loud` inside the string.
    assert_bad(
        "bad_cmdline_value.toml",
        ErrorKind::BadCmdline,
        6,
        32,
        "`loglvl` has the value `loud`",
    );
}

#[test]
fn bad_cmdline_missing_value() {
    assert_bad(
        "bad_cmdline_missing_value.toml",
        ErrorKind::BadCmdline,
        6,
        24,
        "`heartbeat` needs a value",
    );
}

/// Test hooks pass only if the core this crate is built against has them (cargo's feature
/// unification decides, so the test asks the core's own parameter list).
#[test]
fn cmdline_test_hooks_follow_the_core_build() {
    let text = "[system]\nname = \"x\"\n[hypervisor]\ncmdline = \"test_fault=el2-undefined\"\n";
    let hooks_built_in = parameters().any(|name| name == "test_fault");
    match parse(text) {
        Ok(manifest) => assert!(hooks_built_in, "accepted a test hook: {manifest:?}"),
        Err(error) => {
            assert!(!hooks_built_in, "refused a built-in test hook: {error}");
            assert_eq!((error.kind, error.line, error.column), (ErrorKind::BadCmdline, 4, 12));
            assert!(error.message.contains("is a test hook"), "{error}");
        }
    }
}

#[test]
fn duplicate_domain() {
    assert_bad(
        "duplicate_domain.toml",
        ErrorKind::DuplicateDomain,
        11,
        8,
        "a domain named `guest1` is already defined on line 6",
    );
}

#[test]
fn program_or_image_both() {
    // Points at the later of the two.
    assert_bad(
        "program_or_image_both.toml",
        ErrorKind::ProgramOrImage,
        8,
        9,
        "domain `guest1` has both `program` and `image`; keep only one of",
    );
}

#[test]
fn program_or_image_kernel() {
    assert_bad(
        "program_or_image_kernel.toml",
        ErrorKind::ProgramOrImage,
        8,
        10,
        "domain `guest1` has both `image` and `kernel`; keep only one of `program`, `image` and \
         `kernel`",
    );
}

#[test]
fn program_or_image_neither() {
    // Points at the [[domain]] header.
    assert_bad(
        "program_or_image_neither.toml",
        ErrorKind::ProgramOrImage,
        5,
        1,
        "domain `guest1` has none of `program`, `image` and `kernel`",
    );
}

#[test]
fn image_not_found() {
    assert_bad(
        "image_not_found.toml",
        ErrorKind::ImageNotFound,
        7,
        9,
        "image file `guests/missing.elf` not found (looked for tests/bad/guests/missing.elf)",
    );
}

#[test]
fn image_not_found_kernel() {
    assert_bad(
        "image_not_found_kernel.toml",
        ErrorKind::ImageNotFound,
        7,
        10,
        "kernel file `guests/Image` not found (looked for tests/bad/guests/Image)",
    );
}

#[test]
fn image_not_found_ramdisk() {
    assert_bad(
        "image_not_found_ramdisk.toml",
        ErrorKind::ImageNotFound,
        8,
        11,
        "ramdisk file `guests/initrd.cpio` not found",
    );
}

#[test]
fn unknown_debian_artifact() {
    // Points at the name after `debian:`.
    assert_bad(
        "unknown_debian_artifact.toml",
        ErrorKind::UnknownDebianArtifact,
        7,
        18,
        "`debian:linux-image-6.1.0-57-arm64` names nothing this tool fetches from Debian; a \
         `kernel` may be \"debian:linux-image-arm64\"",
    );
}

#[test]
fn unknown_debian_artifact_wrong_key() {
    assert_bad(
        "unknown_debian_artifact_wrong_key.toml",
        ErrorKind::UnknownDebianArtifact,
        7,
        10,
        "`debian:busybox-initramfs` is a `ramdisk`, not a `kernel`; write `ramdisk = ",
    );
}

#[test]
fn cmdline_conflict() {
    // Points at the later of the two keys' values.
    assert_bad(
        "cmdline_conflict.toml",
        ErrorKind::CmdlineConflict,
        10,
        9,
        "`extra` is given with `cmdline`, which is the whole command line",
    );
    assert_bad(
        "cmdline_conflict_root.toml",
        ErrorKind::CmdlineConflict,
        10,
        11,
        "`root` is given with `cmdline`",
    );
}

#[test]
fn xl_cfg_root_and_extra_make_the_command_line() {
    let base = "name = \"g\"\nprogram = \"p\"\nmemory = 1\n";
    let cmdline = |keys: &str| one_domain(&format!("{base}{keys}")).map(|domain| domain.cmdline);
    assert_eq!(cmdline("").unwrap(), "");
    assert_eq!(cmdline("extra = \"console=hvc0 quiet\"\n").unwrap(), "console=hvc0 quiet");
    assert_eq!(cmdline("root = \"/dev/xvda1\"\n").unwrap(), "root=/dev/xvda1");
    assert_eq!(
        cmdline("extra = \"console=hvc0\"\nroot = \"/dev/xvda1 ro\"\n").unwrap(),
        "root=/dev/xvda1 ro console=hvc0"
    );
    assert_eq!(cmdline("cmdline = \"a b\"\n").unwrap(), "a b");
}

#[test]
fn kernel_and_ramdisk_take_files_or_debian_names() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("manifest-kernel-ramdisk");
    std::fs::create_dir_all(dir.join("boot")).expect("creating the test directory");
    std::fs::write(dir.join("boot/Image"), b"ARM").expect("writing the kernel");
    std::fs::write(dir.join("boot/initrd"), b"070701").expect("writing the ramdisk");
    let path = dir.join("system.toml");
    let text = format!(
        "{SYSTEM}[[domain]]\nname = \"a\"\nkernel = \"boot/Image\"\nramdisk = \"boot/initrd\"\n\
         memory = 64\n[[domain]]\nname = \"b\"\nkernel = \"debian:linux-image-arm64\"\n\
         ramdisk = \"debian:busybox-initramfs\"\nmemory = 256\n"
    );
    std::fs::write(&path, text).expect("writing the manifest");
    let manifest = Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let [a, b] = manifest.domains.as_slice() else { panic!("two domains") };
    let kernel = DomainSource::Image {
        key: "kernel",
        written: "boot/Image".into(),
        path: dir.join("boot/Image"),
        at: Position { line: 5, column: 10 },
    };
    assert_eq!(a.source, kernel);
    assert_eq!(a.source.describe(), "kernel file `boot/Image`");
    let ramdisk = a.ramdisk.as_ref().expect("a ramdisk");
    assert_eq!(ramdisk.module_name(), "boot/initrd");
    assert_eq!(ramdisk.position(), Position { line: 6, column: 11 });
    assert_eq!(
        b.source,
        DomainSource::Debian {
            artifact: DebianArtifact::Kernel,
            at: Position { line: 10, column: 10 }
        }
    );
    assert_eq!(b.source.module_name(), "debian:linux-image-arm64");
    let ramdisk = b.ramdisk.as_ref().expect("a ramdisk");
    assert_eq!(ramdisk.module_name(), "debian:busybox-initramfs");
    assert!(!ramdisk.same_bytes(&b.source) && b.source.same_bytes(&b.source.clone()));
}

#[test]
fn the_linux_manifest_validates() {
    let manifest = Manifest::load(Path::new("linux.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.system.name, "linux");
    let names: Vec<&str> = manifest.domains.iter().map(|domain| domain.name.as_str()).collect();
    assert_eq!(
        names,
        ["xenstore", "console", "netback", "linux1", "linux2", "hello", "control", "linux3"]
    );
    assert_eq!(manifest.domains[6].on_shutdown, RestartPolicy::Always.actions());
    assert!(!manifest.domains[7].boot);
    assert_eq!(manifest.domains[1].source.module_name(), "console");
    assert_eq!(manifest.domains[2].source.module_name(), "netback");
    for (index, linux) in manifest.domains[3..5].iter().enumerate() {
        assert_eq!(linux.source.module_name(), "debian:linux-image-arm64");
        let ramdisk = linux.ramdisk.as_ref().expect("the initramfs");
        assert_eq!(ramdisk.module_name(), "debian:busybox-initramfs");
        assert_eq!(linux.memory_mib, 256);
        assert!(linux.cmdline.starts_with("console=hvc0 earlycon=xenboot "), "{}", linux.cmdline);
        let expected = format!("xenolith.cpus={}", linux.vcpus);
        assert!(linux.cmdline.split(' ').any(|word| word == expected), "{}", linux.cmdline);
        let address = format!("xenolith.ip=10.0.0.{}/24", index + 1);
        assert!(linux.cmdline.split(' ').any(|word| word == address), "{}", linux.cmdline);
        assert_eq!(linux.vifs.len(), 1, "{}", linux.name);
        assert!(linux.vifs[0].contains("backend=netback"), "{:?}", linux.vifs);
    }
    assert_eq!(manifest.domains[4].vcpus, 2);
    assert_eq!(manifest.domains[5].source.module_name(), "test-guest");
}

#[test]
fn bad_capability() {
    assert_bad(
        "bad_capability.toml",
        ErrorKind::BadCapability,
        9,
        28,
        "\"consle\" is not a capability; write one of \"control\"",
    );
}

#[test]
fn bad_capability_empty_target() {
    assert_bad(
        "bad_capability_empty_target.toml",
        ErrorKind::BadCapability,
        9,
        17,
        "`dm:` names no domain; write `dm:<domain>`",
    );
}

#[test]
fn capability_target() {
    assert_bad(
        "capability_target.toml",
        ErrorKind::CapabilityTarget,
        14,
        17,
        "`dm:guest2` names `guest2`, which is not a domain of this manifest (domains: guest1, dm1)",
    );
}

#[test]
fn capability_target_self() {
    assert_bad(
        "capability_target_self.toml",
        ErrorKind::CapabilityTarget,
        9,
        28,
        "`introspect:guest1` names domain `guest1` itself",
    );
}

#[test]
fn duplicate_capability() {
    // Points at the second `dm:guest1`.
    assert_bad(
        "duplicate_capability.toml",
        ErrorKind::DuplicateCapability,
        14,
        41,
        "`dm:guest1` is listed twice",
    );
}

#[test]
fn duplicate_xenstore() {
    assert_bad(
        "duplicate_xenstore.toml",
        ErrorKind::DuplicateXenstore,
        15,
        28,
        "domain `xenstore2` holds `xenstore`, but domain `xenstore1` already does",
    );
}

#[test]
fn vcpus_out_of_range() {
    assert_bad("vcpus_out_of_range.toml", ErrorKind::VcpusOutOfRange, 9, 9, "`vcpus` is 9");
}

#[test]
fn vcpus_out_of_range_zero() {
    assert_bad("vcpus_out_of_range_zero.toml", ErrorKind::VcpusOutOfRange, 9, 9, "1 to 8 vCPUs");
}

#[test]
fn memory_out_of_range_domain() {
    assert_bad(
        "memory_out_of_range_domain.toml",
        ErrorKind::MemoryOutOfRange,
        8,
        10,
        "`memory` is \"8G\", outside the 1M to 4096M a domain may have",
    );
}

#[test]
fn memory_out_of_range_domain_zero() {
    assert_bad(
        "memory_out_of_range_domain_zero.toml",
        ErrorKind::MemoryOutOfRange,
        8,
        10,
        "`memory` is 0, outside",
    );
}

#[test]
fn bad_memory_size_domain() {
    assert_bad(
        "bad_memory_size_domain.toml",
        ErrorKind::BadMemorySize,
        8,
        10,
        "\"16MB\", which is not a size",
    );
}

#[test]
fn weight_out_of_range() {
    assert_bad("weight_out_of_range.toml", ErrorKind::WeightOutOfRange, 9, 10, "`weight` is 0");
}

#[test]
fn weight_out_of_range_large() {
    assert_bad(
        "weight_out_of_range_large.toml",
        ErrorKind::WeightOutOfRange,
        9,
        10,
        "`weight` is 65536, but a credit2 weight is 1 to 65535",
    );
}

#[test]
fn cap_out_of_range() {
    assert_bad(
        "cap_out_of_range.toml",
        ErrorKind::CapOutOfRange,
        10,
        7,
        "`cap` is 201, but with 2 vCPUs a cap is 1 to 200",
    );
}

#[test]
fn cap_out_of_range_negative() {
    assert_bad(
        "cap_out_of_range_negative.toml",
        ErrorKind::CapOutOfRange,
        9,
        7,
        "`cap` is -1, but with 1 vCPU a cap is 1 to 100",
    );
}

#[test]
fn bad_affinity_empty() {
    assert_bad(
        "bad_affinity_empty.toml",
        ErrorKind::BadAffinity,
        9,
        8,
        "`cpus` is an empty list, which allows no CPU",
    );
}

#[test]
fn bad_affinity_cpu() {
    // Points at the 64.
    assert_bad(
        "bad_affinity_cpu.toml",
        ErrorKind::BadAffinity,
        9,
        12,
        "CPU 64 in `cpus` is not a CPU number; they are 0 to 63",
    );
}

#[test]
fn bad_affinity_duplicate() {
    // Points at the second 1.
    assert_bad(
        "bad_affinity_duplicate.toml",
        ErrorKind::BadAffinity,
        10,
        20,
        "CPU 1 is listed twice in `cpus_soft`",
    );
}

#[test]
fn bad_affinity_string() {
    assert_bad(
        "bad_affinity_string.toml",
        ErrorKind::BadAffinity,
        9,
        8,
        "`cpus` is \"0-3\"; write \"all\" or a list of CPU numbers",
    );
}

#[test]
fn bad_restart() {
    assert_bad(
        "bad_restart.toml",
        ErrorKind::BadRestart,
        9,
        11,
        "`restart` is \"on_crash\"; write \"never\", \"on-crash\" or \"always\"",
    );
}

#[test]
fn bad_preserved() {
    assert_bad(
        "bad_preserved.toml",
        ErrorKind::BadPreserved,
        9,
        17,
        "`preserved_kib` is 6, but a preserved region is a whole number of 4 KiB pages, 0 to \
         65536 KiB; choose a multiple of 4 in that range",
    );
}

#[test]
fn unknown_key_domain() {
    assert_bad(
        "unknown_key_domain.toml",
        ErrorKind::UnknownKey,
        9,
        1,
        "unknown key `vcpu` (expected one of `name`, `program`, `image`, `kernel`, `ramdisk`, `memory`, `vcpus`,",
    );
}

#[test]
fn missing_key_domain() {
    assert_bad(
        "missing_key_domain.toml",
        ErrorKind::MissingKey,
        5,
        1,
        "[[domain]] is missing the required key `memory`",
    );
}

#[test]
fn wrong_type_domain() {
    assert_bad(
        "wrong_type_domain.toml",
        ErrorKind::WrongType,
        9,
        8,
        "expected a boolean, found string \"yes\"",
    );
}

#[test]
fn wrong_type_domain_table() {
    assert_bad(
        "wrong_type_domain_table.toml",
        ErrorKind::WrongType,
        5,
        1,
        "write its header as [[domain]]",
    );
}

#[test]
fn bad_name_domain() {
    assert_bad(
        "bad_name_domain.toml",
        ErrorKind::BadName,
        6,
        14,
        "the domain name contains ' ', which is not allowed",
    );
}

#[test]
fn bad_name_program() {
    assert_bad("bad_name_program.toml", ErrorKind::BadName, 7, 16, "the program name contains ' '");
}

// A domain with `boot = false` is created by the control domain from the xl.cfg text the bundle
// carries for it (`<name>.cfg`): what that text cannot say, or a module the control domain cannot
// find by name, is refused here.

#[test]
fn run_time_setting() {
    assert_bad(
        "run_time_setting.toml",
        ErrorKind::RunTimeSetting,
        10,
        17,
        "domain `guest1` has `boot = false`, so the control domain creates it at run time from \
         its xl.cfg text (module `guest1.cfg`), and xl.cfg has no word for capabilities: the \
         control domain creates only plain guests; remove `capabilities`, or build the domain at \
         boot",
    );
}

#[test]
fn run_time_setting_preserved() {
    assert_bad(
        "run_time_setting_preserved.toml",
        ErrorKind::RunTimeSetting,
        10,
        17,
        "xl.cfg has no word for a preserved region; remove `preserved_kib`",
    );
}

#[test]
fn run_time_setting_xl() {
    // Capabilities are the manifest's even beside `xl`: the error is there.
    assert_bad(
        "run_time_setting_xl.toml",
        ErrorKind::RunTimeSetting,
        8,
        17,
        "xl.cfg has no word for capabilities",
    );
}

#[test]
fn run_time_module_name() {
    assert_bad(
        "run_time_module_name.toml",
        ErrorKind::RunTimeModuleName,
        6,
        8,
        "domain `a-guest-name-of-29-characters` has `boot = false`, so the control domain looks \
         its xl.cfg text up by module name, but `a-guest-name-of-29-characters.cfg` is 33 bytes, \
         more than the 32 it can look up; shorten the domain's name to at most 28 characters",
    );
}

#[test]
fn run_time_module_name_image() {
    assert_bad(
        "run_time_module_name_image.toml",
        ErrorKind::RunTimeModuleName,
        7,
        11,
        "looks its image up by module name, but `a-program-whose-name-has-33-bytes` is 33 bytes",
    );
}

#[test]
fn run_time_module_name_xl() {
    assert_bad_xl(
        "run_time_module_name_xl.toml",
        ErrorKind::RunTimeModuleName,
        ("xl/long_name.cfg", 2, 8),
        6,
        "`a-guest-name-of-29-characters.cfg` is 33 bytes",
    );
}

#[test]
fn boot_domains_may_hold_what_run_time_domains_may_not() {
    // The same domains as the broken manifests above, built at boot: no module is looked up by
    // name, and the core gives capabilities and preserved regions.
    let text = format!(
        "{SYSTEM}[[domain]]\nname = \"a-guest-name-of-29-characters\"\n\
         program = \"a-program-whose-name-has-33-bytes\"\nmemory = 16\n\
         capabilities = [\"console\"]\npreserved_kib = 64\n"
    );
    let manifest = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(manifest.domains[0].boot);
    // Exactly 32 bytes is still found.
    let text = format!(
        "{SYSTEM}[[domain]]\nname = \"a-guest-name-of-28-character\"\n\
         program = \"a-program-whose-name-is-32-bytes\"\nmemory = 16\nboot = false\n"
    );
    let manifest = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.domains[0].xl_cfg_module_name().len(), 32);
}

// ---- Across kinds -----------------------------------------------------------------------------------

/// `BadMemorySize` -> `bad_memory_size`.
fn snake_case(kind: ErrorKind) -> String {
    let mut name = String::new();
    for c in format!("{kind:?}").chars() {
        if c.is_ascii_uppercase() && !name.is_empty() {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

#[test]
fn every_bad_manifest_fails_with_the_kind_it_is_named_after() {
    let mut count = 0;
    for entry in std::fs::read_dir(BAD).expect("tests/bad") {
        let path = entry.expect("directory entry").path();
        let file = path.file_name().and_then(|name| name.to_str()).expect("UTF-8 name").to_owned();
        if !file.ends_with(".toml") {
            continue;
        }
        let error = load_bad(&file);
        let kind = snake_case(error.kind);
        let stem = file.trim_end_matches(".toml");
        assert!(
            stem == kind || stem.starts_with(&format!("{kind}_")),
            "{file} fails as {kind}, not as its name says: {error}"
        );
        count += 1;
    }
    assert!(count >= 10, "only {count} broken manifests in {BAD}");
}

#[test]
fn parse_all_reports_every_value_error_in_file_order() {
    let text = "[qemu]\nmemory = \"1T\"\ncpus = 0\n[system]\nname = \"a b\"\n";
    let errors = Manifest::parse_all(Path::new("inline.toml"), text).expect_err("three errors");
    let found: Vec<_> = errors.iter().map(|e| (e.kind, e.line, e.column)).collect();
    assert_eq!(
        found,
        [
            (ErrorKind::BadMemorySize, 2, 10),
            (ErrorKind::CpusOutOfRange, 3, 8),
            (ErrorKind::BadName, 5, 10),
        ]
    );
    // `parse` returns the first of them.
    assert_eq!(parse(text).expect_err("fails").kind, ErrorKind::BadMemorySize);
}

#[test]
fn columns_count_characters_and_escaped_strings_point_at_the_string() {
    // "é" is two bytes but one column; the escape \u0020 (a space) means the column cannot be
    // mapped inside the string, so the error points at its opening quote.
    let text = "# é\n[system]\nname = \"a\\u0020b\" # é\n";
    let error = parse(text).expect_err("a space in the name");
    assert_eq!((error.kind, error.line, error.column), (ErrorKind::BadName, 3, 8));
    let text = "[system] # é\nname = \"é\"\n";
    let error = parse(text).expect_err("é in the name");
    assert_eq!((error.kind, error.line, error.column), (ErrorKind::BadName, 2, 9));
}

#[test]
fn bad_shutdown_action() {
    assert_bad(
        "bad_shutdown_action.toml",
        ErrorKind::BadShutdownAction,
        10,
        12,
        "`on_crash` is \"coredump-destroy\"; write \"destroy\", \"restart\" or \"preserve\"",
    );
}

#[test]
fn shutdown_actions_take_xl_defaults_then_restart_then_each_on_key() {
    let text = "[system]\nname = \"s\"\n[[domain]]\nname = \"a\"\nprogram = \"test-guest\"\n\
                memory = 16\n[[domain]]\nname = \"b\"\nprogram = \"test-guest\"\nmemory = 16\n\
                restart = \"on-crash\"\non_poweroff = \"preserve\"\n";
    let manifest = Manifest::parse(Path::new("inline.toml"), text).expect("valid");
    assert_eq!(manifest.domains[0].on_shutdown, ShutdownActions::XL_DEFAULT);
    let b = manifest.domains[1].on_shutdown;
    assert_eq!(
        (b.poweroff, b.reboot, b.crash),
        (ShutdownAction::Preserve, ShutdownAction::Destroy, ShutdownAction::Restart)
    );
}

// ---- Domains from xl.cfg files ----------------------------------------------------------------------

/// Writes `files` (path relative to `dir`, text) under a fresh `dir` in cargo's test directory.
fn write_files(dir: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("creating a directory");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    dir
}

/// `domain` with the manifest positions of its image and ramdisk cleared: an xl.cfg file's kernel
/// is placed at the `xl` key, a plain manifest's at its own key.
fn without_positions(mut domain: Domain) -> Domain {
    fn clear(source: &mut DomainSource) {
        match source {
            DomainSource::Program { at, .. }
            | DomainSource::Image { at, .. }
            | DomainSource::Debian { at, .. }
            | DomainSource::Ext4 { at, .. } => *at = Position { line: 0, column: 0 },
        }
    }
    clear(&mut domain.source);
    domain.ramdisk.as_mut().map(clear);
    domain
}

#[test]
fn an_xl_cfg_file_gives_the_domain_its_plain_manifest_gives() {
    // Every key the file may give, kernel and ramdisk relative to the file; beside `xl`, the
    // manifest-only keys. The second domain's kernel is a program of this workspace.
    let guest = "# guest1 as xl.cfg(5) writes it\n\
                 name = \"guest1\"\ntype = \"pvh\"\nmemory = 64\nmaxmem = 64\nvcpus = 2\n\
                 maxvcpus = 2\ncpus = \"0-1,3\"\ncpus_soft = \"all,^0\"\n\
                 kernel = \"boot/Image\"\nramdisk = \"boot/initrd\"\n\
                 root = \"/dev/xvda1\"; extra = \"console=hvc0\"\n\
                 on_poweroff = \"preserve\"\non_crash = \"restart\"\ncpu_weight = 512\n\
                 cap = 150\nvif = []\n";
    let service = "name = \"svc\"\nmemory = 0x10\ncmdline = \"name=svc test=spin\"\n";
    let with_xl = "[system]\nname = \"x\"\n\
                   [[domain]]\nxl = \"guests/guest1.cfg\"\nrestart = \"always\"\nboot = false\n\
                   [[domain]]\nxl = \"guests/svc.cfg\"\nprogram = \"test-guest\"\n\
                   capabilities = [\"console\"]\npreserved_kib = 64\n";
    let soft: Vec<String> = (1..64).map(|cpu| cpu.to_string()).collect();
    let plain = format!(
        "[system]\nname = \"x\"\n\
         [[domain]]\nname = \"guest1\"\nkernel = \"guests/boot/Image\"\n\
         ramdisk = \"guests/boot/initrd\"\nmemory = 64\nvcpus = 2\ncpus = [0, 1, 3]\n\
         cpus_soft = [{}]\nroot = \"/dev/xvda1\"\nextra = \"console=hvc0\"\n\
         on_poweroff = \"preserve\"\non_crash = \"restart\"\nweight = 512\ncap = 150\n\
         restart = \"always\"\nboot = false\n\
         [[domain]]\nname = \"svc\"\nprogram = \"test-guest\"\nmemory = 16\n\
         cmdline = \"name=svc test=spin\"\ncapabilities = [\"console\"]\npreserved_kib = 64\n",
        soft.join(", ")
    );
    let dir = write_files(
        "manifest-xl-good",
        &[
            ("guests/guest1.cfg", guest),
            ("guests/svc.cfg", service),
            ("guests/boot/Image", "ARM"),
            ("guests/boot/initrd", "070701"),
            ("xl.toml", with_xl),
            ("plain.toml", &plain),
        ],
    );
    let from_xl = Manifest::load(&dir.join("xl.toml")).unwrap_or_else(|e| panic!("{e}"));
    let from_plain = Manifest::load(&dir.join("plain.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_xl.warnings, [], "a file xl reads without a remark gives no warning");
    let [guest, service] = &from_xl.domains[..] else { panic!("{:?}", from_xl.domains) };
    // Spelled out, so that both readings cannot agree on a mistake.
    assert_eq!((guest.name.as_str(), guest.memory_mib, guest.vcpus), ("guest1", 64, 2));
    assert_eq!((guest.hard_affinity, guest.soft_affinity), (0b1011, !1));
    assert_eq!((guest.weight, guest.cap, guest.boot), (512, 150, false));
    assert_eq!(guest.cmdline, "root=/dev/xvda1 console=hvc0");
    let actions = guest.on_shutdown;
    assert_eq!(
        (actions.poweroff, actions.reboot, actions.crash),
        (ShutdownAction::Preserve, ShutdownAction::Restart, ShutdownAction::Restart)
    );
    let kernel = DomainSource::Image {
        key: "kernel",
        written: "guests/boot/Image".into(),
        path: dir.join("guests/boot/Image"),
        at: Position { line: 4, column: 6 },
    };
    assert_eq!(guest.source, kernel, "relative to the xl.cfg file, placed at the `xl` key");
    assert_eq!(service.source.module_name(), "test-guest");
    assert_eq!(
        (service.capabilities.as_slice(), service.preserved_kib),
        (&["console".to_owned()][..], 64)
    );
    assert_eq!(service.memory_mib, 16, "xl's numbers are C's: 0x10 is 16");
    for (xl, plain) in from_xl.domains.iter().zip(&from_plain.domains) {
        assert_eq!(without_positions(xl.clone()), without_positions(plain.clone()));
    }
    assert_eq!(from_xl.domains.len(), from_plain.domains.len());
}

#[test]
fn an_xl_cfg_file_takes_xl_defaults() {
    let dir = write_files(
        "manifest-xl-defaults",
        &[
            ("a.cfg", "name = \"a\"\n"),
            ("x.toml", "[system]\nname = \"x\"\n[[domain]]\nxl = \"a.cfg\"\nprogram = \"p\"\n"),
        ],
    );
    let manifest = Manifest::load(&dir.join("x.toml")).unwrap_or_else(|e| panic!("{e}"));
    let domain = &manifest.domains[0];
    // libxl's 32 MiB, one vCPU, weight 256, no cap, no pinning, destroy/restart/destroy.
    assert_eq!((domain.memory_mib, domain.vcpus, domain.weight, domain.cap), (32, 1, 256, 0));
    assert_eq!((domain.hard_affinity, domain.soft_affinity), (AFFINITY_ALL, AFFINITY_ALL));
    assert_eq!(domain.on_shutdown, ShutdownActions::XL_DEFAULT);
    assert_eq!((domain.cmdline.as_str(), domain.ramdisk.as_ref()), ("", None));
}

#[test]
fn xl_cfg_remarks_are_warnings_with_file_line_and_column() {
    let cfg = "name = \"w\"\ntype = \"pv\"\nmaxmem = 64\nvcpus = 2\nmaxvcpus = 4\n\
               weight = 5\ncmdline = \"quiet\"\nextra = \"x\"\n";
    let dir = write_files(
        "manifest-xl-warnings",
        &[
            ("guests/w.cfg", cfg),
            (
                "x.toml",
                "[system]\nname = \"x\"\n[[domain]]\nxl = \"guests/w.cfg\"\nprogram = \"p\"\n",
            ),
        ],
    );
    let manifest = Manifest::load(&dir.join("x.toml")).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("guests/w.cfg");
    let warning = |line, column, message: &str| ManifestWarning {
        path: path.clone(),
        line,
        column,
        message: message.to_owned(),
    };
    assert_eq!(
        manifest.warnings,
        [
            warning(2, 8, "Converting PV guest to PVH (Arm guests are PVH)"),
            warning(
                3,
                10,
                "`maxmem` is 64 MiB, above `memory` (32 MiB): a Xenolith boot domain keeps the \
                 memory it is built with and cannot balloon up, so it has 32 MiB"
            ),
            warning(
                5,
                12,
                "`maxvcpus` is 4, above `vcpus` (2): Xenolith has no vCPU hot-plug, so the domain \
                 has 2 vCPUs"
            ),
            warning(
                6,
                1,
                "key `weight' is not used by Xenolith and ignored (xl's key is `cpu_weight')"
            ),
            warning(7, 11, "ignoring root= and extra= in favour of cmdline="),
        ]
    );
    assert_eq!(
        manifest.warnings[0].to_string(),
        format!("{}:2:8: warning: Converting PV guest to PVH (Arm guests are PVH)", path.display())
    );
    // The domain is what the file says, warnings or not.
    let domain = &manifest.domains[0];
    assert_eq!((domain.memory_mib, domain.vcpus, domain.weight), (32, 2, 256));
    assert_eq!(domain.cmdline, "quiet");
}

#[test]
fn xl_not_found() {
    assert_bad(
        "xl_not_found.toml",
        ErrorKind::XlNotFound,
        6,
        6,
        "xl.cfg file `xl/missing.cfg` not found (looked for tests/bad/xl/missing.cfg); `xl` is \
         relative to the manifest file",
    );
}

#[test]
fn bad_xl_config() {
    // libxlu's words, at the line and column of the token after `memory`.
    assert_bad_xl(
        "bad_xl_config.toml",
        ErrorKind::BadXlConfig,
        ("xl/syntax.cfg", 3, 8),
        6,
        "error: syntax error near `16': expecting `=' or `+='",
    );
}

#[test]
fn bad_xl_config_value() {
    assert_bad_xl(
        "bad_xl_config_value.toml",
        ErrorKind::BadXlConfig,
        ("xl/bad_weight.cfg", 4, 14),
        6,
        "parameter `cpu_weight' is 0, outside 1..=65535",
    );
}

#[test]
fn memory_out_of_range_xl() {
    assert_bad_xl(
        "memory_out_of_range_xl.toml",
        ErrorKind::MemoryOutOfRange,
        ("xl/big.cfg", 4, 10),
        6,
        "`memory` is 8192 (MiB), outside the 1 to 4096 MiB a domain may have",
    );
}

#[test]
fn vcpus_out_of_range_xl() {
    assert_bad_xl(
        "vcpus_out_of_range_xl.toml",
        ErrorKind::VcpusOutOfRange,
        ("xl/many_vcpus.cfg", 4, 9),
        6,
        "`vcpus` is 16, but a domain has 1 to 8 vCPUs",
    );
}

#[test]
fn bad_affinity_xl() {
    assert_bad_xl(
        "bad_affinity_xl.toml",
        ErrorKind::BadAffinity,
        ("xl/cpus.cfg", 4, 8),
        6,
        "CPU 64 in `cpus` is not a CPU number; they are 0 to 63",
    );
}

#[test]
fn bad_shutdown_action_xl() {
    assert_bad_xl(
        "bad_shutdown_action_xl.toml",
        ErrorKind::BadShutdownAction,
        ("xl/rename_restart.cfg", 4, 12),
        6,
        "`on_crash` is \"rename-restart\"; write \"destroy\", \"restart\" or \"preserve\"",
    );
}

#[test]
fn bad_name_xl() {
    assert_bad_xl(
        "bad_name_xl.toml",
        ErrorKind::BadName,
        ("xl/bad_name.cfg", 2, 8),
        6,
        "the domain name contains '.', which is not allowed",
    );
}

#[test]
fn image_not_found_xl() {
    assert_bad_xl(
        "image_not_found_xl.toml",
        ErrorKind::ImageNotFound,
        ("xl/missing_kernel.cfg", 3, 10),
        6,
        "kernel file `boot/Image` not found (looked for tests/bad/xl/boot/Image); file paths are \
         relative to the xl.cfg file",
    );
}

#[test]
fn xl_unsupported() {
    // Not dropped: a guest booted without its disk is not the guest the file describes.
    assert_bad_xl(
        "xl_unsupported.toml",
        ErrorKind::XlUnsupported,
        ("xl/disk.cfg", 5, 8),
        6,
        "`disk` cannot be honoured: Xenolith has no block backend (blkback), nor virtio disks \
         from xl.cfg files",
    );
}

#[test]
fn program_or_image_xl() {
    assert_bad(
        "program_or_image_xl.toml",
        ErrorKind::ProgramOrImage,
        6,
        6,
        "domain `guest1` has no image: its xl.cfg file `xl/guest.cfg` has no `kernel`",
    );
}

#[test]
fn duplicate_domain_xl() {
    assert_bad_xl(
        "duplicate_domain_xl.toml",
        ErrorKind::DuplicateDomain,
        ("xl/guest.cfg", 2, 8),
        11,
        "a domain named `guest1` is already defined on line 6 of tests/bad/duplicate_domain_xl.toml",
    );
}

#[test]
fn xl_conflict() {
    // At the manifest's value, naming the file's key: both places.
    assert_bad(
        "xl_conflict.toml",
        ErrorKind::XlConflict,
        8,
        10,
        "`memory` is given here and in the xl.cfg file at tests/bad/xl/guest.cfg:3:1; a domain \
         with `xl` takes it from the file, so remove it here",
    );
}

#[test]
fn xl_conflict_manifest_only() {
    assert_bad(
        "xl_conflict_manifest_only.toml",
        ErrorKind::XlConflict,
        8,
        10,
        "`weight` is given beside `xl`, but a domain with `xl` takes it from its xl.cfg file \
         `xl/guest.cfg` (as `cpu_weight`); move it there",
    );
}

#[test]
fn xl_conflict_program() {
    assert_bad(
        "xl_conflict_program.toml",
        ErrorKind::XlConflict,
        7,
        11,
        "`program` is given here and the xl.cfg file gives `kernel` at \
         tests/bad/xl/kernel.cfg:3:1",
    );
}

#[test]
fn every_xl_word_beside_xl_is_refused_and_manifest_only_keys_are_not() {
    let dir = write_files("manifest-xl-words", &[("a.cfg", "name = \"a\"\nmemory = 16\n")]);
    let load = |keys: &str| {
        let text = format!("{SYSTEM}[[domain]]\nxl = \"a.cfg\"\nprogram = \"p\"\n{keys}");
        let path = dir.join("x.toml");
        std::fs::write(&path, text).expect("writing the manifest");
        Manifest::load(&path)
    };
    for keys in [
        "name = \"a\"",
        "memory = 16",
        "vcpus = 1",
        "cpus = \"all\"",
        "cpus_soft = [0]",
        "image = \"a.cfg\"",
        "kernel = \"debian:linux-image-arm64\"",
        "ramdisk = \"debian:busybox-initramfs\"",
        "cmdline = \"\"",
        "root = \"/dev/xvda\"",
        "extra = \"quiet\"",
        "on_poweroff = \"destroy\"",
        "on_reboot = \"restart\"",
        "on_crash = \"destroy\"",
        "weight = 256",
        "cap = 0",
    ] {
        let error = load(keys).expect_err(keys);
        assert_eq!((error.kind, error.line), (ErrorKind::XlConflict, 6), "{keys}: {error}");
    }
    let manifest =
        load("capabilities = [\"console\"]\nrestart = \"on-crash\"\npreserved_kib = 4\n")
            .unwrap_or_else(|e| panic!("{e}"));
    let domain = &manifest.domains[0];
    assert_eq!(domain.capabilities, ["console"]);
    assert_eq!(domain.on_shutdown, RestartPolicy::OnCrash.actions());
    assert_eq!((domain.preserved_kib, domain.boot), (4, true));
    let manifest = load("boot = false\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(!manifest.domains[0].boot);
}

/// `iomem`, `irqs` and `direct_map`: accepted with a `hardware:` capability on a boot domain,
/// refused at the value at fault otherwise.
#[test]
fn passthrough_keys_are_checked_where_written() {
    let base = "[system]\nname = \"pt\"\n[[domain]]\nname = \"control\"\nprogram = \"control\"\n\
                memory = 32\n";
    let good = format!(
        "{base}capabilities = [\"control\", \"hardware:virtio-console\"]\niomem = [\"0xa003,1\"]\n\
         irqs = [79]\ndirect_map = \"0x7ff00,100\"\n"
    );
    let manifest = Manifest::parse(Path::new("pt.toml"), &good).expect("accepted");
    let hardware = &manifest.domains[0].passthrough;
    assert_eq!(hardware.irqs, [79]);
    assert_eq!(
        hardware.direct_map.and_then(|window| window.bytes()),
        Some(0x7ff0_0000..0x8000_0000)
    );
    let refused = |text: String, line: usize, phrase: &str| {
        let errors = Manifest::parse_all(Path::new("pt.toml"), &text).expect_err("refused");
        let error = &errors[0];
        assert_eq!((error.line, error.kind), (line, ErrorKind::BadPassthrough), "{error}");
        assert!(error.to_string().contains(phrase), "{error}");
    };
    let without = good.replace(", \"hardware:virtio-console\"", "");
    refused(without, 8, "`hardware:` capability");
    refused(good.replace("0xa003,1", "0xa003,1@0xb000"), 8, "no @GFN");
    refused(good.replace("0xa003,1", "zz"), 8, "Invalid argument parsing iomem");
    refused(good.replace("0xa003,1", "0xa002,1"), 7, "give the domain `iomem` covering");
    refused(good.replace("[79]", "[79, 300]"), 9, "not an SPI");
    refused(good.replace("0x7ff00,100", "0x40000,100"), 10, "overlaps the domain's RAM");
    refused(good.replace("0x7ff00,100", "0x7ff00,200"), 10, "not inside the host RAM");
    let second = format!(
        "{good}[[domain]]\nname = \"other\"\nprogram = \"control\"\nmemory = 8\n\
         capabilities = [\"hardware:x\"]\nirqs = [79]\n"
    );
    refused(second, 16, "domain \"control\" is given too");
}

#[test]
fn bad_vif_entries_are_located() {
    assert_bad(
        "bad_vif_mac.toml",
        ErrorKind::BadVif,
        9,
        27,
        "`vif` entry \"mac=00:16:3e:zz:00:01\": Invalid parameter `mac'",
    );
    assert_bad(
        "bad_vif_option.toml",
        ErrorKind::BadVif,
        9,
        8,
        "unrecognized argument `bridg=xenbr0' (xl would skip it)",
    );
}

// ---- Emulated devices and their device model -------------------------------------------------------

#[test]
fn xl_unsupported_vuart() {
    assert_bad_xl(
        "xl_unsupported_vuart.toml",
        ErrorKind::XlUnsupported,
        ("xl/vuart.cfg", 5, 9),
        6,
        "`vuart` cannot be honoured: Xenolith has no emulated UART for a domain from an xl.cfg \
         file",
    );
}

#[test]
fn xl_conflict_vuart() {
    assert_bad(
        "xl_conflict_vuart.toml",
        ErrorKind::XlConflict,
        8,
        9,
        "`vuart` is given beside `xl`, but a domain from an xl.cfg file has no emulated devices \
         yet",
    );
}

#[test]
fn bad_vuart() {
    assert_bad("bad_vuart.toml", ErrorKind::BadVuart, 16, 9, "`vuart` is \"pl011\"; the only");
}

#[test]
fn bad_disk() {
    // No `specification`: xl's default is a `xen` disk, served by blkback.
    assert_bad(
        "bad_disk.toml",
        ErrorKind::BadDisk,
        16,
        9,
        "a disk is `specification=xen` unless it says otherwise, and that needs a block backend \
         (blkback), which Xenolith does not have; add `specification=virtio`",
    );
    // Each at the parameter at fault inside the entry.
    assert_bad(
        "bad_disk_xen.toml",
        ErrorKind::BadDisk,
        16,
        20,
        "a `xen` disk needs a block backend (blkback)",
    );
    assert_bad(
        "bad_disk_format.toml",
        ErrorKind::BadDisk,
        16,
        20,
        "format `qcow2`: the device model serves raw images",
    );
    assert_bad(
        "bad_disk_backendtype.toml",
        ErrorKind::BadDisk,
        16,
        20,
        "`backendtype=standalone` (the only backend type for `specification=virtio`)",
    );
    assert_bad(
        "bad_disk_parameter.toml",
        ErrorKind::BadDisk,
        16,
        41,
        "this parameter is not offered",
    );
    assert_bad(
        "bad_disk_spec.toml",
        ErrorKind::BadDisk,
        16,
        9,
        "no vdev specified (xl would refuse it)",
    );
}

#[test]
fn bad_disk_ext4_size() {
    // At the size after `xenolith:ext4:`.
    assert_bad(
        "bad_disk_ext4_size.toml",
        ErrorKind::BadDisk,
        16,
        62,
        "`xenolith:ext4:64`: an ext4 image made here is `xenolith:ext4:<MiB>`, 1 to 63 MiB",
    );
}

#[test]
fn bad_disk_two() {
    assert_bad(
        "bad_disk_two.toml",
        ErrorKind::BadDisk,
        17,
        9,
        "a domain has at most 1 virtio disk for now",
    );
}

#[test]
fn bad_disk_sectors() {
    // At the target.
    assert_bad(
        "bad_disk_sectors.toml",
        ErrorKind::BadDisk,
        16,
        48,
        "disk image `disks/odd.img` is 1000 bytes, not a non-zero whole number of 512-byte sectors",
    );
}

#[test]
fn image_not_found_disk() {
    assert_bad(
        "image_not_found_disk.toml",
        ErrorKind::ImageNotFound,
        16,
        48,
        "disk image `disks/missing.img` not found (looked for tests/bad/disks/missing.img)",
    );
}

#[test]
fn device_model_count() {
    // At the guest's first emulated device.
    assert_bad(
        "device_model_count.toml",
        ErrorKind::DeviceModelCount,
        9,
        9,
        "domain `guest1` has emulated devices (`vuart` or a virtio `disk`), but no device-model \
         domain serves it; add a domain with `program = \"device-model\"` and \
         `capabilities = [\"dm:guest1\"]`",
    );
    assert_bad(
        "device_model_count_two.toml",
        ErrorKind::DeviceModelCount,
        23,
        9,
        "domain `guest1` is served by 2 device-model domains (dm, dm2); keep one",
    );
}

#[test]
fn device_model_target() {
    assert_bad(
        "device_model_target.toml",
        ErrorKind::DeviceModelTarget,
        9,
        17,
        "`guest1` has neither `vuart` nor a virtio `disk`, so there is nothing to emulate",
    );
    // At the program.
    assert_bad(
        "device_model_target_none.toml",
        ErrorKind::DeviceModelTarget,
        7,
        11,
        "domain `dm` runs the device model but holds no `dm:<domain>` capability",
    );
    // At the second `dm:`.
    assert_bad(
        "device_model_target_two.toml",
        ErrorKind::DeviceModelTarget,
        9,
        30,
        "this is a second `dm:` capability; run one device-model domain per guest",
    );
}

#[test]
fn device_model_generated() {
    assert_bad(
        "device_model_generated.toml",
        ErrorKind::DeviceModelGenerated,
        11,
        9,
        "this tool generates its command line and its ramdisk (its guest's disk) from the guest \
         it serves; remove `extra`",
    );
    assert_bad(
        "device_model_generated_ramdisk.toml",
        ErrorKind::DeviceModelGenerated,
        11,
        11,
        "remove `ramdisk`",
    );
}

#[test]
fn device_model_preserved() {
    assert_bad(
        "device_model_preserved.toml",
        ErrorKind::DeviceModelPreserved,
        10,
        17,
        "its preserved region holds the disk (32768 KiB) and 1024 KiB of state: write \
         `preserved_kib = 33792` (it is 32768)",
    );
}

#[test]
fn run_time_setting_devices() {
    assert_bad(
        "run_time_setting_devices.toml",
        ErrorKind::RunTimeSetting,
        10,
        9,
        "its emulated devices (`vuart`, `disk`) need a device-model domain that serves a boot \
         domain",
    );
}

/// A guest with both emulated devices and a device model for it, after `before` (lines of
/// `[[domain]]` tables) and with `disk` as its disk entry.
fn device_model_system(before: &str, disk: &str, preserved_kib: u32) -> String {
    format!(
        "{SYSTEM}{before}
[[domain]]
name = \"dm\"
program = \"device-model\"
memory = 64
capabilities = [\"dm:guest1\"]
restart = \"on-crash\"
preserved_kib = {preserved_kib}

[[domain]]
name = \"guest1\"
kernel = \"debian:linux-image-arm64\"
memory = 256
vuart = \"sbsa_uart\"
disk = [\"{disk}\"]
"
    )
}

#[test]
fn the_device_model_gets_its_guest_s_command_line_and_disk() {
    // Two boot domains and one created later before them: the guest is boot domain 2.
    let before = "[[domain]]\nname = \"a\"\nprogram = \"p\"\nmemory = 1\n\
                  [[domain]]\nname = \"later\"\nprogram = \"p\"\nmemory = 1\nboot = false\n\
                  [[domain]]\nname = \"b\"\nprogram = \"p\"\nmemory = 1\n";
    let disk = "vdev=xvda,access=rw,backendtype=standalone,specification=virtio,\
                target=xenolith:ext4:32";
    let text = device_model_system(before, disk, 33792);
    let manifest = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let [_, _, _, dm, guest] = &manifest.domains[..] else { panic!("{:?}", manifest.domains) };
    assert_eq!(
        dm.cmdline,
        "xenolith.dm.target=3 xenolith.dm.ram=0x40000000:0x10000000 \
         xenolith.dm.uart=0x22000000:32 xenolith.dm.blk=0x2000000:33"
    );
    let ramdisk = dm.ramdisk.as_ref().expect("the disk is the device model's ramdisk");
    assert_eq!(ramdisk, &guest.disks[0].image);
    assert_eq!(ramdisk.module_name(), "xenolith:ext4:32");
    // At the target inside the entry.
    assert_eq!(ramdisk.position(), Position { line: 30, column: 81 });
    assert_eq!(ramdisk.describe(), "the ext4 image `xenolith:ext4:32`");
    assert!(guest.vuart);
    let [disk] = &guest.disks[..] else { panic!("{:?}", guest.disks) };
    assert_eq!((disk.vdev.as_str(), disk.read_only, disk.size), ("xvda", false, 32 << 20));
    assert_eq!(guest.cmdline, "");

    // 1 MiB more than the disk, exactly, is enough; a KiB less is not.
    let text =
        device_model_system("", "vdev=xvda,specification=virtio,target=xenolith:ext4:1", 2048);
    let manifest = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        manifest.domains[0].cmdline,
        "xenolith.dm.target=1 xenolith.dm.ram=0x40000000:0x10000000 \
         xenolith.dm.uart=0x22000000:32 xenolith.dm.blk=0x2000000:33"
    );
    let text =
        device_model_system("", "vdev=xvda,specification=virtio,target=xenolith:ext4:1", 2044);
    let error = parse(&text).expect_err("too small");
    assert_eq!(error.kind, ErrorKind::DeviceModelPreserved, "{error}");
    assert!(error.message.contains("write `preserved_kib = 2048`"), "{error}");
}

/// `virtio_net = true`: the looped-back virtio-net in the virtio-mmio slot after the disks.
#[test]
fn a_virtio_net_device_takes_the_slot_after_the_disks() {
    let text =
        device_model_system("", "vdev=xvda,specification=virtio,target=xenolith:ext4:1", 2048)
            .replace("vuart = \"sbsa_uart\"\n", "vuart = \"sbsa_uart\"\nvirtio_net = true\n");
    let manifest = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(manifest.domains[1].virtio_net);
    assert_eq!(
        manifest.domains[0].cmdline,
        "xenolith.dm.target=1 xenolith.dm.ram=0x40000000:0x10000000 \
         xenolith.dm.uart=0x22000000:32 xenolith.dm.blk=0x2000000:33 \
         xenolith.dm.net=0x2000200:34"
    );
}

#[test]
fn a_read_only_disk_file_is_served_read_only() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("manifest-disk-file");
    std::fs::create_dir_all(dir.join("disks")).expect("creating the test directory");
    std::fs::write(dir.join("disks/root.img"), vec![0u8; 3 * 512]).expect("writing the disk");
    let path = dir.join("system.toml");
    let text = device_model_system(
        "",
        "format=raw,vdev=xvda,access=ro,specification=virtio,target=disks/root.img",
        1028,
    )
    .replace("vuart = \"sbsa_uart\"\n", "");
    std::fs::write(&path, &text).expect("writing the manifest");
    let manifest = Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let [dm, guest] = &manifest.domains[..] else { panic!("{:?}", manifest.domains) };
    assert!(!guest.vuart);
    assert_eq!(
        dm.cmdline,
        "xenolith.dm.target=1 xenolith.dm.ram=0x40000000:0x10000000 xenolith.dm.blk=0x2000000:33:ro"
    );
    let expected = DomainSource::Image {
        key: "disk",
        written: "disks/root.img".into(),
        path: dir.join("disks/root.img"),
        at: Position { line: 16, column: 69 },
    };
    assert_eq!(dm.ramdisk, Some(expected));
    assert_eq!(guest.disks[0].size, 1536);
    assert!(guest.disks[0].read_only);
}

#[test]
fn a_uart_alone_needs_only_the_device_model_s_own_state() {
    let text = format!(
        "{SYSTEM}[[domain]]\nname = \"dm\"\nprogram = \"device-model\"\nmemory = 8\n\
         capabilities = [\"dm:g\"]\npreserved_kib = 1024\n\
         [[domain]]\nname = \"g\"\nprogram = \"p\"\nmemory = 16\nvuart = \"sbsa_uart\"\n"
    );
    let manifest = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let dm = &manifest.domains[0];
    assert_eq!(
        dm.cmdline,
        "xenolith.dm.target=1 xenolith.dm.ram=0x40000000:0x1000000 xenolith.dm.uart=0x22000000:32"
    );
    assert_eq!(dm.ramdisk, None);
}

#[test]
fn emulated_interrupts_and_windows_are_not_passed_through() {
    // INTID 33 is the virtio disk's; 0x2000 is the frame of its registers.
    for (keys, phrase) in [
        ("irqs = [79, 33]\niomem = [\"0xa003,1\"]\n", "`irqs` entry 33 is the interrupt of an"),
        (
            "irqs = [79]\niomem = [\"0xa003,1\", \"0x2000,1\"]\n",
            "`iomem` entry \"0x2000,1\" covers the registers",
        ),
    ] {
        let text =
            device_model_system("", "vdev=xvda,specification=virtio,target=xenolith:ext4:1", 2048)
                .replace(
                    "memory = 256\n",
                    &format!("memory = 256\ncapabilities = [\"hardware:virtio-console\"]\n{keys}"),
                );
        let error = parse(&text).expect_err("a clash");
        assert_eq!(error.kind, ErrorKind::BadPassthrough, "{error}");
        assert!(error.message.contains(phrase), "{error}");
    }
}

#[test]
fn the_dm_linux_manifest_validates() {
    let path = Path::new("../tests/manifests/dm-linux.toml");
    let manifest = Manifest::load(path).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = manifest.domains.iter().map(|domain| domain.name.as_str()).collect();
    assert_eq!(names, ["xenstore", "dm", "linux1"]);
    let [_, dm, linux] = &manifest.domains[..] else { unreachable!() };
    assert_eq!(dm.source.module_name(), "device-model");
    assert_eq!(dm.on_shutdown, RestartPolicy::OnCrash.actions());
    assert_eq!(dm.memory_mib, 64);
    assert_eq!(dm.preserved_kib, 32 * 1024 + 1024);
    assert_eq!(
        dm.cmdline,
        "xenolith.dm.target=2 xenolith.dm.ram=0x40000000:0x10000000 \
         xenolith.dm.uart=0x22000000:32 xenolith.dm.blk=0x2000000:33"
    );
    assert_eq!(
        dm.ramdisk.as_ref().map(DomainSource::module_name).as_deref(),
        Some("xenolith:ext4:32")
    );
    assert!(linux.vuart && linux.vifs.is_empty());
    assert_eq!(linux.disks.len(), 1);
    assert!(linux.cmdline.starts_with("console=ttyAMA0 quiet "), "{}", linux.cmdline);
}
