//! Building a system's boot bundle from its manifest: domain images become aligned modules the
//! core's own parser accepts, and a `program` or `image` that cannot be used is refused with the
//! manifest's file, line and column.
//!
//! Nothing here builds a program (no domain crate is stable enough to build in a host test): the
//! images are small files the tests write, and the program checks stop before cargo builds.

use std::path::{Path, PathBuf};

use xenolith_abi::bundle::{Bundle, Capability, RestartPolicy, MODULE_ALIGN, VERSION};
use xenolith_images::manifest::{ErrorKind, Manifest, ManifestError};
use xenolith_images::workspace::build_bundle;

/// A fresh directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bundle").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the test directory");
    dir
}

/// The smallest file that passes the host tool's ELF check (an aarch64 little-endian ELF64
/// identification and `e_machine`), followed by `body` bytes of a pattern named by `seed`.
fn fake_elf(body: usize, seed: u8) -> Vec<u8> {
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    (elf[4], elf[5], elf[6]) = (2, 1, 1); // ELFCLASS64, ELFDATA2LSB, EV_CURRENT
    elf[0x12..0x14].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
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
    let guest = fake_elf(5000, 1);
    let dm = fake_elf(10, 2);
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
capabilities = ["dm:guest1", "xenstore"]
weight = 512
cpus_soft = [0]
boot = false
restart = "always"

[[domain]]
name = "guest2"
image = "guests/guest.elf"
memory = 16
"#,
    );
    let bytes = build_bundle(&manifest).unwrap_or_else(|e| panic!("{e:#}"));
    let bundle = Bundle::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bundle.header.version.get(), VERSION);
    let boot = &bundle.manifest;
    assert_eq!((boot.name, boot.cmdline), ("modules", "loglvl=all"));

    // guest1 and guest2 share one module.
    let names: Vec<_> = boot.modules.iter().map(|module| module.name).collect();
    assert_eq!(names, ["guests/guest.elf", "dm.elf"]);
    let modules: Vec<_> = boot.domains.iter().map(|domain| domain.module).collect();
    assert_eq!(modules, [0, 1, 0]);
    for (index, (module, image)) in boot.modules.iter().zip([&guest, &dm]).enumerate() {
        assert_eq!(module.offset % MODULE_ALIGN, 0, "module {index} at {}", module.offset);
        assert_eq!(module.size, image.len() as u64);
        assert_eq!(bundle.module(index), Some(image.as_slice()));
    }
    assert!(boot.modules[0].offset >= u64::from(bundle.header.manifest_size.get()));
    assert_eq!(bundle.payload.len() as u64, boot.modules[1].offset + dm.len() as u64);

    let guest1 = &boot.domains[0];
    assert_eq!(guest1.name, "guest1");
    assert_eq!((guest1.memory_mib, guest1.vcpus, guest1.weight, guest1.cap), (64, 2, 256, 150));
    assert_eq!((guest1.hard_affinity, guest1.soft_affinity), (0b1010, u64::MAX));
    assert_eq!(
        (guest1.restart, guest1.boot, guest1.cmdline),
        (RestartPolicy::OnCrash, true, "console=hvc0")
    );
    assert_eq!(bundle.domain_image(guest1), Some(guest.as_slice()));
    let dm1 = &boot.domains[1];
    assert_eq!(
        dm1.capabilities,
        [Capability::DeviceModel { target: "guest1" }, Capability::Xenstore]
    );
    assert_eq!((dm1.weight, dm1.soft_affinity, dm1.boot), (512, 1, false));
    assert_eq!(dm1.restart, RestartPolicy::Always);
    assert_eq!(bundle.domain_image(&boot.domains[2]), Some(guest.as_slice()));
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
fn an_image_that_is_not_an_aarch64_elf_file_is_refused_at_its_value() {
    let dir = scratch("not-elf");
    let mut x86 = fake_elf(0, 0);
    x86[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    for (file, bytes, problem) in [
        ("text.elf", b"just text".to_vec(), "it does not start with the ELF magic"),
        ("x86.elf", x86, "it is built for another architecture"),
    ] {
        std::fs::write(dir.join(file), bytes).expect("writing the image");
        let manifest = manifest_in(
            &dir,
            &format!("[system]\nname = \"x\"\n[[domain]]\nname = \"g\"\nmemory = 1\nimage = \"{file}\"\n"),
        );
        let error = build_bundle(&manifest).expect_err("not an aarch64 ELF file");
        let error = manifest_error(&error);
        assert_eq!((error.kind, error.line, error.column), (ErrorKind::BadImage, 6, 9), "{error}");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "{}:6:9: error: image file `{file}`",
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
