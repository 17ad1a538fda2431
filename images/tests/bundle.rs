//! Building a system's boot bundle from its manifest: domain images become aligned modules the
//! core's own parser accepts, and a `program` or `image` that cannot be used is refused with the
//! manifest's file, line and column.
//!
//! Nothing here builds a program (no domain crate is stable enough to build in a host test): the
//! images are small files the tests write, and the program checks stop before cargo builds.

use std::path::{Path, PathBuf};

use xenolith_abi::bundle::{Bundle, Capability, LoadChunk, RestartPolicy, MODULE_ALIGN, VERSION};
use xenolith_abi::xen::arch_arm::GUEST_RAM0_BASE;
use xenolith_builder::{DomainConfig, Emulated};
use xenolith_images::manifest::{DomainSource, ErrorKind, Manifest, ManifestError};
use xenolith_images::workspace::build_bundle;

/// A fresh directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bundle").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the test directory");
    dir
}

/// The smallest AArch64 ELF executable that boots as far as the plan goes: one loadable segment
/// of `body` bytes (a pattern named by `seed`) at `GUEST_RAM0_BASE`, entered at its start.
fn tiny_elf(body: usize, seed: u8) -> Vec<u8> {
    let mut elf = vec![0u8; 0x40 + 56];
    elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01"); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
    elf[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[0x12..0x14].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf[0x18..0x20].copy_from_slice(&GUEST_RAM0_BASE.to_le_bytes()); // e_entry
    elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes()); // e_phoff
    elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    let header = 0x40;
    elf[header..header + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    for (at, value) in [(8, 0x78u64), (16, GUEST_RAM0_BASE), (24, GUEST_RAM0_BASE)] {
        elf[header + at..header + at + 8].copy_from_slice(&value.to_le_bytes());
    }
    for at in [32, 40] {
        elf[header + at..header + at + 8].copy_from_slice(&(body as u64).to_le_bytes());
    }
    elf.extend((0..body).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    elf
}

/// Writes `manifest` as `dir/system.toml` and loads it.
fn manifest_in(dir: &Path, manifest: &str) -> Manifest {
    let path = dir.join("system.toml");
    std::fs::write(&path, manifest).expect("writing the manifest");
    Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The manifest error inside a build error.
#[track_caller]
fn manifest_error(error: &anyhow::Error) -> &ManifestError {
    error
        .downcast_ref::<ManifestError>()
        .unwrap_or_else(|| panic!("not a manifest error: {error:#}"))
}

#[test]
fn images_are_packed_once_each_as_aligned_modules() {
    let dir = scratch("images");
    std::fs::create_dir_all(dir.join("guests")).expect("creating guests/");
    let guest = tiny_elf(5000, 1);
    let dm = tiny_elf(10, 2);
    std::fs::write(dir.join("guests/guest.elf"), &guest).expect("writing guest.elf");
    std::fs::write(dir.join("dm.elf"), &dm).expect("writing dm.elf");
    let manifest = manifest_in(
        &dir,
        r#"[system]
name = "modules"
[hypervisor]
cmdline = "loglvl=all"

[[domain]]
name = "guest1"
image = "guests/guest.elf"
memory = "64M"
vcpus = 2
cap = 150
cpus = [1, 3]
restart = "on-crash"
cmdline = "console=hvc0"

[[domain]]
name = "dm1"
image = "dm.elf"
memory = 8
weight = 512
cpus_soft = [0]
boot = false
restart = "always"

[[domain]]
name = "guest2"
image = "guests/guest.elf"
memory = 16
capabilities = ["dm:guest1", "xenstore"]
"#,
    );
    let bytes = build_bundle(&manifest).unwrap_or_else(|e| panic!("{e:#}"));
    let bundle = Bundle::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bundle.header.version.get(), VERSION);
    let boot = &bundle.manifest;
    assert_eq!((boot.name, boot.cmdline), ("modules", "loglvl=all"));

    // guest1 and guest2 share one module; each boot domain has its device tree, dm1 (not built
    // at boot) its xl.cfg text.
    let names: Vec<_> = boot.modules.iter().map(|module| module.name).collect();
    assert_eq!(names, ["guests/guest.elf", "dm.elf", "guest1.dtb", "dm1.cfg", "guest2.dtb"]);
    let modules: Vec<_> = boot.domains.iter().map(|domain| domain.module).collect();
    assert_eq!(modules, [0, 1, 0]);
    for (index, (module, image)) in boot.modules.iter().zip([&guest, &dm]).enumerate() {
        assert_eq!(module.offset % MODULE_ALIGN, 0, "module {index} at {}", module.offset);
        assert_eq!(module.size, image.len() as u64);
        assert_eq!(bundle.module(index), Some(image.as_slice()));
    }
    assert!(boot.modules[0].offset >= u64::from(bundle.header.manifest_size.get()));
    let last = boot.modules.last().unwrap();
    assert_eq!(bundle.payload.len() as u64, last.offset + last.size);

    // Boot domains carry their prepared image: the ELF's segment straight from its module, the
    // device tree at the top of RAM, entered at e_entry with x0 = the device tree.
    let guest1_image = boot.domains[0].prepared.as_ref().expect("guest1 boots");
    let dtb_address = GUEST_RAM0_BASE + (64 << 20) - xenolith_builder::DTB_SPACE;
    assert_eq!(
        guest1_image.chunks,
        [
            LoadChunk { address: GUEST_RAM0_BASE, module: 0, offset: 0x78, size: 5000 },
            LoadChunk { address: dtb_address, module: 2, offset: 0, size: boot.modules[2].size },
        ]
    );
    assert_eq!(
        (guest1_image.entry, guest1_image.registers),
        (GUEST_RAM0_BASE, [dtb_address, 0, 0, 0])
    );
    assert!(boot.domains[1].prepared.is_none(), "dm1 is built by the control domain");
    assert_eq!(boot.domains[2].prepared.as_ref().unwrap().chunks[1].module, 4);

    let guest1 = &boot.domains[0];
    assert_eq!(guest1.name, "guest1");
    assert_eq!((guest1.memory_mib, guest1.vcpus, guest1.weight, guest1.cap), (64, 2, 256, 150));
    assert_eq!((guest1.hard_affinity, guest1.soft_affinity), (0b1010, u64::MAX));
    assert_eq!(
        (guest1.on_shutdown, guest1.boot, guest1.cmdline),
        (RestartPolicy::OnCrash.actions(), true, "console=hvc0")
    );
    assert_eq!(bundle.domain_image(guest1), Some(guest.as_slice()));
    let dm1 = &boot.domains[1];
    assert_eq!((dm1.weight, dm1.soft_affinity, dm1.boot), (512, 1, false));
    assert_eq!(dm1.on_shutdown, RestartPolicy::Always.actions());
    assert_eq!(bundle.module(3), Some(manifest.domains[1].xl_cfg().as_bytes()));
    let guest2 = &boot.domains[2];
    assert_eq!(
        guest2.capabilities,
        [Capability::DeviceModel { target: "guest1" }, Capability::Xenstore]
    );
    assert_eq!(bundle.domain_image(guest2), Some(guest.as_slice()));
}

#[test]
fn a_system_without_domains_has_an_empty_bundle_manifest() {
    let text = "[system]\nname = \"empty\"\n";
    let manifest = Manifest::parse(Path::new("empty.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let bytes = build_bundle(&manifest).unwrap_or_else(|e| panic!("{e:#}"));
    let bundle = Bundle::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((bundle.manifest.domains.len(), bundle.manifest.modules.len()), (0, 0));
    assert_eq!(bundle.payload.len(), bundle.header.manifest_size.get() as usize);
}

#[test]
fn an_image_that_cannot_boot_is_refused_at_its_value() {
    let dir = scratch("not-elf");
    let mut x86 = tiny_elf(0, 0);
    x86[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    for (file, bytes, problem) in [
        ("text.elf", b"just text".to_vec(), "neither an AArch64 ELF file nor an arm64 Linux Image"),
        ("x86.elf", x86, "expected an AArch64 (183) executable"),
    ] {
        std::fs::write(dir.join(file), bytes).expect("writing the image");
        let manifest = manifest_in(
            &dir,
            &format!("[system]\nname = \"x\"\n[[domain]]\nname = \"g\"\nmemory = 1\nimage = \"{file}\"\n"),
        );
        let error = build_bundle(&manifest).expect_err("not an image that boots");
        let error = manifest_error(&error);
        assert_eq!((error.kind, error.line, error.column), (ErrorKind::BadImage, 6, 9), "{error}");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "{}:6:9: error: image file `{file}` cannot boot as domain `g`:",
                dir.join("system.toml").display()
            )),
            "{text}"
        );
        assert!(text.contains(problem), "{text}");
    }
}

#[test]
fn an_unknown_program_is_refused_at_its_value() {
    let path = Path::new("tests/build/unknown_program.toml");
    let manifest = Manifest::load(path).unwrap_or_else(|e| panic!("{e}"));
    let error = build_bundle(&manifest).expect_err("no such program");
    let error = manifest_error(&error);
    assert_eq!(error.kind, ErrorKind::UnknownProgram);
    let text = error.to_string();
    assert!(
        text.starts_with(
            "tests/build/unknown_program.toml:8:11: error: `no-such-program` is not a package of \
             this workspace (binary crates: "
        ),
        "{text}"
    );
    assert!(text.contains("add the crate to the workspace members"), "{text}");
}

#[test]
fn a_program_without_its_binary_is_refused_at_its_value() {
    // xenolith-abi is a library; xenolith-images's binary is called xtask.
    let dir = scratch("no-binary");
    for package in ["xenolith-abi", "xenolith-images"] {
        let manifest = manifest_in(
            &dir,
            &format!("[system]\nname = \"x\"\n[[domain]]\nname = \"g\"\nprogram = \"{package}\"\nmemory = 1\n"),
        );
        let error = build_bundle(&manifest).expect_err("no binary of that name");
        let error = manifest_error(&error);
        assert_eq!((error.kind, error.line, error.column), (ErrorKind::UnknownProgram, 5, 11));
        let expected =
            format!("package `{package}` of this workspace has no binary target `{package}`");
        assert!(error.message.starts_with(&expected), "{error}");
    }
}

#[test]
fn an_image_larger_than_its_memory_is_refused_at_its_value() {
    let dir = scratch("too-large");
    std::fs::write(dir.join("big.elf"), tiny_elf(1 << 20, 0)).expect("writing the image");
    let manifest = manifest_in(
        &dir,
        "[system]\nname = \"x\"\n[[domain]]\nname = \"g\"\nmemory = 1\nimage = \"big.elf\"\n",
    );
    let error = build_bundle(&manifest).expect_err("1 MiB of code does not fit 1 MiB of RAM");
    let error = manifest_error(&error);
    assert_eq!((error.kind, error.line, error.column), (ErrorKind::BadImage, 6, 9), "{error}");
    assert!(error.to_string().contains("give the domain more memory"), "{error}");
}

/// The control domain builds run-time domains with `xenolith_builder::plan` from the image, its
/// memory, one vCPU and its command line (`domains/control/src/builder.rs`); the host tool
/// prepares boot domains with the same function from the manifest entry. For the same domain
/// both device trees are the same bytes.
#[test]
fn boot_and_run_time_builders_write_byte_identical_device_trees() {
    let dir = scratch("same-dtb");
    let guest = tiny_elf(3000, 7);
    std::fs::write(dir.join("guest.elf"), &guest).expect("writing the image");
    let manifest = manifest_in(
        &dir,
        r#"[system]
name = "same"

[[domain]]
name = "g"
image = "guest.elf"
memory = 32
cmdline = "console=hvc0 earlycon=xenboot"
"#,
    );
    let bytes = build_bundle(&manifest).unwrap_or_else(|e| panic!("{e:#}"));
    let bundle = Bundle::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let prepared = bundle.manifest.domains[0].prepared.as_ref().expect("a boot domain");
    let dtb_chunk = prepared.chunks.last().expect("the device tree is the last chunk");
    let from_bundle = &bundle.module(dtb_chunk.module as usize).unwrap()
        [dtb_chunk.offset as usize..][..dtb_chunk.size as usize];

    // What the control domain computes for `xl create` of the same image, memory and cmdline.
    let config = DomainConfig {
        memory_mib: 32,
        vcpus: 1,
        cmdline: "console=hvc0 earlycon=xenboot",
        initrd_size: None,
        hardware: Default::default(),
        emulated: Default::default(),
    };
    let at_run_time = xenolith_builder::plan(&guest, &config).expect("the image plans");
    assert_eq!(from_bundle, at_run_time.dtb.as_slice());
    assert_eq!(dtb_chunk.address, at_run_time.dtb_address);
    assert_eq!((prepared.entry, prepared.registers), (at_run_time.entry, at_run_time.registers));
    assert!(from_bundle.starts_with(&[0xd0, 0x0d, 0xfe, 0xed]), "a flattened device tree");
}

/// A domain's `ramdisk` is a module of its own, packed once however many domains use it (and for
/// a domain not built at boot too, for the control domain), and a boot domain copies it with one
/// chunk where `xenolith_builder` places an initrd, which its device tree names.
#[test]
fn ramdisks_are_modules_and_load_chunks() {
    let dir = scratch("ramdisk");
    let guest = tiny_elf(3000, 5);
    let ramdisk: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    std::fs::write(dir.join("guest.elf"), &guest).expect("writing the image");
    std::fs::write(dir.join("initrd.cpio"), &ramdisk).expect("writing the ramdisk");
    let manifest = manifest_in(
        &dir,
        r#"[system]
name = "ramdisk"

[[domain]]
name = "a"
kernel = "guest.elf"
ramdisk = "initrd.cpio"
memory = 256
extra = "console=hvc0"

[[domain]]
name = "b"
kernel = "guest.elf"
ramdisk = "initrd.cpio"
memory = 64

[[domain]]
name = "later"
image = "guest.elf"
ramdisk = "initrd.cpio"
memory = 16
boot = false
"#,
    );
    let bytes = build_bundle(&manifest).unwrap_or_else(|e| panic!("{e:#}"));
    let bundle = Bundle::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let boot = &bundle.manifest;
    let names: Vec<_> = boot.modules.iter().map(|module| module.name).collect();
    assert_eq!(names, ["guest.elf", "initrd.cpio", "a.dtb", "b.dtb", "later.cfg"]);
    assert_eq!(bundle.module(1), Some(ramdisk.as_slice()));
    for (domain, memory_mib) in boot.domains.iter().zip([256u32, 64]) {
        let prepared = domain.prepared.as_ref().expect("a boot domain");
        let config = DomainConfig {
            memory_mib,
            vcpus: 1,
            cmdline: domain.cmdline,
            initrd_size: Some(ramdisk.len() as u64),
            hardware: Default::default(),
            emulated: Default::default(),
        };
        let plan = xenolith_builder::plan(&guest, &config).expect("the image plans");
        let address = plan.initrd_address.expect("an initrd address");
        let initrd = LoadChunk { address, module: 1, offset: 0, size: ramdisk.len() as u64 };
        assert_eq!(prepared.chunks[prepared.chunks.len() - 2], initrd, "{}", domain.name);
        let dtb = prepared.chunks.last().expect("the device tree is the last chunk");
        let dtb = &bundle.module(dtb.module as usize).unwrap()[..dtb.size as usize];
        assert_eq!(dtb, plan.dtb.as_slice(), "{}", domain.name);
    }
    // 256 MiB: at 128 MiB (libxl's choice); 64 MiB: just below the device tree.
    let addresses: Vec<u64> = boot
        .domains
        .iter()
        .filter_map(|domain| domain.prepared.as_ref())
        .map(|prepared| prepared.chunks[prepared.chunks.len() - 2].address)
        .collect();
    assert_eq!(addresses[0], GUEST_RAM0_BASE + (128 << 20));
    assert_eq!(addresses[1], GUEST_RAM0_BASE + (64 << 20) - 0x1_0000 - 0x2000);
}

#[test]
fn a_ramdisk_that_does_not_fit_is_refused_at_its_key() {
    let dir = scratch("ramdisk-too-big");
    std::fs::write(dir.join("guest.elf"), tiny_elf(100, 1)).expect("writing the image");
    std::fs::write(dir.join("big.cpio"), vec![7u8; 3 << 20]).expect("writing the ramdisk");
    let manifest = manifest_in(
        &dir,
        "[system]\nname = \"x\"\n[[domain]]\nname = \"g\"\nkernel = \"guest.elf\"\n\
         ramdisk = \"big.cpio\"\nmemory = 2\n",
    );
    let error = build_bundle(&manifest).expect_err("3 MiB of ramdisk do not fit 2 MiB of RAM");
    let error = manifest_error(&error);
    assert_eq!((error.kind, error.line, error.column), (ErrorKind::BadImage, 6, 11), "{error}");
    assert!(error.to_string().contains("ramdisk file `big.cpio` cannot boot"), "{error}");
    assert!(error.to_string().contains("use a smaller initrd"), "{error}");
}

/// Each domain not built at boot gets a module `<name>.cfg`, its xl.cfg text, and no device tree;
/// a boot domain gets a device tree and no text. The text names its kernel and ramdisk by the
/// names of modules of the same bundle, and looking those up by name, as the control domain does
/// (`domains/control/src/builder.rs` `read_module`), finds the image and ramdisk packed for it.
#[test]
fn domains_not_built_at_boot_carry_their_xl_cfg_text() {
    let dir = scratch("xl-cfg");
    let ramdisk: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(dir.join("guest.elf"), b"replaced by the loader").expect("writing the image");
    std::fs::write(dir.join("initrd.cpio"), &ramdisk).expect("writing the ramdisk");
    let manifest = manifest_in(
        &dir,
        r#"[system]
name = "cfgs"

[[domain]]
name = "control"
program = "control"
memory = 16
capabilities = ["control"]

[[domain]]
name = "child"
program = "test-guest"
memory = 16
boot = false
cmdline = 'name=child test="a b" \'

[[domain]]
name = "guest"
image = "guest.elf"
memory = 32

[[domain]]
name = "linux"
kernel = "guest.elf"
ramdisk = "initrd.cpio"
memory = 64
vcpus = 2
cpus = [1]
on_crash = "preserve"
boot = false
"#,
    );
    // Each source its own bytes: a tiny ELF seeded by the order of first use, or the ramdisk.
    let mut loaded: Vec<(String, Vec<u8>)> = Vec::new();
    let bytes = xenolith_images::bundle::pack(&manifest, |source| {
        let name = source.module_name();
        let bytes = if name == "initrd.cpio" {
            ramdisk.clone()
        } else {
            tiny_elf(1000, loaded.len() as u8)
        };
        loaded.push((name, bytes.clone()));
        Ok(bytes)
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let bundle = Bundle::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let boot = &bundle.manifest;
    let names: Vec<_> = boot.modules.iter().map(|module| module.name).collect();
    assert_eq!(
        names,
        [
            "control",
            "test-guest",
            "guest.elf",
            "initrd.cpio",
            "control.dtb",
            "child.cfg",
            "guest.dtb",
            "linux.cfg"
        ]
    );
    let by_name = |name: &str| {
        let index = boot.modules.iter().position(|module| module.name == name);
        bundle.module(index.unwrap_or_else(|| panic!("no module named `{name}`")))
    };
    for (domain, spec) in manifest.domains.iter().zip(&boot.domains) {
        let cfg = boot.modules.iter().find(|module| module.name == format!("{}.cfg", domain.name));
        assert_eq!(cfg.is_some(), !domain.boot, "{}", domain.name);
        assert_eq!(spec.prepared.is_some(), domain.boot, "{}", domain.name);
        let Some(cfg) = cfg else { continue };
        let text = std::str::from_utf8(by_name(cfg.name).unwrap()).expect("UTF-8 text");
        assert_eq!(text, domain.xl_cfg());
        let config = xenolith_xlcfg::parse_domain(text).unwrap_or_else(|e| panic!("{e}")).config;
        assert_eq!(config.name, domain.name);
        let kernel = config.kernel.expect("a kernel");
        let image = loaded.iter().find(|(name, _)| *name == kernel).map(|(_, bytes)| bytes);
        assert_eq!(by_name(&kernel), image.map(Vec::as_slice), "{}'s kernel", domain.name);
        assert_eq!(by_name(&kernel), bundle.domain_image(spec), "{}'s kernel", domain.name);
        if let Some(name) = config.ramdisk {
            assert_eq!(by_name(&name), Some(ramdisk.as_slice()), "{}'s ramdisk", domain.name);
        }
    }
    let child =
        xenolith_xlcfg::parse_domain(std::str::from_utf8(by_name("child.cfg").unwrap()).unwrap())
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
    assert_eq!(
        (child.kernel.as_deref(), child.ramdisk.as_deref(), child.cmdline.as_deref()),
        (Some("test-guest"), None, Some(r#"name=child test="a b" \"#))
    );
    let linux =
        xenolith_xlcfg::parse_domain(std::str::from_utf8(by_name("linux.cfg").unwrap()).unwrap())
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
    assert_eq!(
        (linux.kernel.as_deref(), linux.ramdisk.as_deref(), linux.memory_mib, linux.vcpus),
        (Some("guest.elf"), Some("initrd.cpio"), 64, 2)
    );
    assert_eq!(linux.on_crash, xenolith_xlcfg::Action::Preserve);
}

#[test]
fn two_modules_of_one_name_are_refused() {
    // An image file named like a domain's xl.cfg module would hide one of them from the control
    // domain, which finds modules by name.
    let dir = scratch("same-name");
    std::fs::write(dir.join("later.cfg"), tiny_elf(100, 1)).expect("writing the image");
    let manifest = manifest_in(
        &dir,
        "[system]\nname = \"x\"\n[[domain]]\nname = \"g\"\nmemory = 4\nimage = \"later.cfg\"\n\
         [[domain]]\nname = \"later\"\nmemory = 4\nimage = \"later.cfg\"\nboot = false\n",
    );
    let error = build_bundle(&manifest).expect_err("two modules named later.cfg");
    assert!(
        error.to_string().starts_with(
            "two modules of the bundle would be named `later.cfg`, and the control domain finds \
             modules by name"
        ),
        "{error:#}"
    );
}

/// A guest with a UART and a virtio disk, and its device model: the guest's device tree has both
/// devices where libxl places them, and the device model boots with the generated command line
/// and the disk image as its ramdisk. `pack` is given the images directly (the `device-model`
/// program is not built here; the ext4 image is a stand-in of its size).
#[test]
fn a_device_model_boots_with_its_guest_s_disk_and_command_line() {
    let dir = scratch("device-model");
    let guest = tiny_elf(3000, 7);
    let model = tiny_elf(100, 8);
    std::fs::write(dir.join("guest.elf"), &guest).expect("writing the guest");
    let manifest = manifest_in(
        &dir,
        r#"[system]
name = "dm"

[[domain]]
name = "dm"
program = "device-model"
memory = 16
capabilities = ["dm:guest1"]
preserved_kib = 2048

[[domain]]
name = "guest1"
kernel = "guest.elf"
memory = 64
vuart = "sbsa_uart"
disk = ["vdev=xvda,specification=virtio,target=xenolith:ext4:1"]
"#,
    );
    let disk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let bytes = xenolith_images::bundle::pack(&manifest, |source| match source {
        DomainSource::Program { name, .. } if name == "device-model" => Ok(model.clone()),
        DomainSource::Image { path, .. } => Ok(std::fs::read(path)?),
        DomainSource::Ext4 { mib: 1, .. } => Ok(disk.clone()),
        other => panic!("unexpected {other:?}"),
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let bundle = Bundle::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let boot = &bundle.manifest;
    let names: Vec<_> = boot.modules.iter().map(|module| module.name).collect();
    assert_eq!(names, ["device-model", "xenolith:ext4:1", "guest.elf", "dm.dtb", "guest1.dtb"]);
    let [dm, guest1] = &boot.domains[..] else { panic!("two domains") };
    let expected = "xenolith.dm.target=1 xenolith.dm.ram=0x40000000:0x4000000 \
                    xenolith.dm.uart=0x22000000:32 xenolith.dm.blk=0x2000000:33";
    assert_eq!(dm.cmdline, expected);
    assert_eq!(dm.capabilities, [Capability::DeviceModel { target: "guest1" }]);
    assert_eq!(dm.preserved_kib, 2048);

    // The device model: the disk as its ramdisk, the command line in its tree.
    let config = DomainConfig {
        memory_mib: 16,
        vcpus: 1,
        cmdline: expected,
        initrd_size: Some(disk.len() as u64),
        hardware: Default::default(),
        emulated: Default::default(),
    };
    let plan = xenolith_builder::plan(&model, &config).expect("the device model plans");
    let prepared = dm.prepared.as_ref().expect("a boot domain");
    let address = plan.initrd_address.expect("an initrd address");
    let initrd = LoadChunk { address, module: 1, offset: 0, size: disk.len() as u64 };
    assert_eq!(prepared.chunks[prepared.chunks.len() - 2], initrd);
    assert_eq!(bundle.module(1), Some(disk.as_slice()));
    let tree = prepared.chunks.last().expect("the device tree");
    assert_eq!(&bundle.module(tree.module as usize).unwrap()[..tree.size as usize], plan.dtb);

    // The guest: the tree the builder writes with the UART and one virtio-mmio device.
    let emulated = Emulated { uart: true, virtio_mmio: 1 };
    let config = DomainConfig {
        memory_mib: 64,
        vcpus: 1,
        cmdline: "",
        initrd_size: None,
        hardware: Default::default(),
        emulated,
    };
    let plan = xenolith_builder::plan(&guest, &config).expect("the guest plans");
    let prepared = guest1.prepared.as_ref().expect("a boot domain");
    let tree = prepared.chunks.last().expect("the device tree");
    let tree = &bundle.module(tree.module as usize).unwrap()[..tree.size as usize];
    assert_eq!(tree, plan.dtb);
    let contains = |text: &str| tree.windows(text.len()).any(|window| window == text.as_bytes());
    assert!(contains("virtio@2000000\0") && contains("virtio,mmio\0"));
    assert!(contains("sbsa-uart@22000000\0") && contains("/sbsa-uart@22000000\0"));
    assert!(!contains("virtio@2000200"));
}
