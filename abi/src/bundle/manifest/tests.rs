//! The manifest checks, one refused change per problem kind.
use super::*;

fn domain(name: &'static str) -> DomainSpec<'static> {
    DomainSpec {
        name,
        module: 0,
        memory_mib: 16,
        vcpus: 1,
        capabilities: Vec::new(),
        weight: DEFAULT_WEIGHT,
        cap: 0,
        hard_affinity: AFFINITY_ALL,
        soft_affinity: AFFINITY_ALL,
        on_shutdown: RestartPolicy::Never.actions(),
        preserved_kib: 0,
        boot: true,
        cmdline: "",
        prepared: Some(image(&[(GUEST_RAM0_BASE, 0, 100)])),
        passthrough: Passthrough::default(),
    }
}

/// A prepared image of module 0's `(address, offset, size)` runs, entered at RAM's start.
fn image(chunks: &[(u64, u64, u64)]) -> BootImage {
    let chunks = chunks
        .iter()
        .map(|&(address, offset, size)| LoadChunk { address, module: 0, offset, size })
        .collect();
    BootImage { chunks, entry: GUEST_RAM0_BASE, registers: [0; 4] }
}

/// Two domains sharing one module of 100 bytes at 4096, in a 4196-byte payload.
fn good() -> BootManifest<'static> {
    BootManifest {
        name: "test",
        cmdline: "",
        domains: vec![domain("a"), domain("b")],
        modules: vec![ModuleRef { name: "guest", offset: 4096, size: 100 }],
    }
}

const PAYLOAD: u64 = 4196;

/// `good()` changed by `change` is refused with `problem`, whose message contains `phrase`.
#[track_caller]
fn refused(
    change: impl FnOnce(&mut BootManifest<'static>),
    problem: ManifestProblem,
    phrase: &str,
) {
    let mut manifest = good();
    change(&mut manifest);
    assert_eq!(manifest.validate(PAYLOAD), Err(problem));
    let message = problem.to_string();
    assert!(message.contains(phrase), "expected {phrase:?} in: {message}");
}

#[test]
fn good_manifest_passes() {
    assert_eq!(good().validate(PAYLOAD), Ok(()));
    let empty = BootManifest { name: "x", cmdline: "", domains: vec![], modules: vec![] };
    assert_eq!(empty.validate(0), Ok(()));
}

#[test]
fn limits_are_accepted_at_both_ends() {
    let mut manifest = good();
    let longest: &'static str = format!("Az09_-{}", "z".repeat(58)).leak();
    assert_eq!(longest.len(), DOMAIN_NAME_MAX_LEN);
    let a = &mut manifest.domains[0];
    a.name = longest;
    (a.vcpus, a.memory_mib, a.weight, a.cap) = (MAX_VCPUS, DOMAIN_MEMORY_MAX_MIB, 1, 800);
    (a.hard_affinity, a.soft_affinity) = (1, 1 << 63);
    let b = &mut manifest.domains[1];
    (b.vcpus, b.memory_mib, b.weight, b.cap) = (1, 1, u16::MAX, 100);
    b.capabilities = vec![
        Capability::Control,
        Capability::Xenstore,
        Capability::Console,
        Capability::DeviceModel { target: longest },
        Capability::Introspect { target: longest },
        Capability::Hardware { device: "uart0" },
    ];
    manifest.modules[0].size = PAYLOAD - 4096;
    assert_eq!(manifest.validate(PAYLOAD), Ok(()));
}

#[test]
fn bad_name() {
    let long: &'static str = "x".repeat(65).leak();
    for name in ["", "a b", "é", long] {
        refused(|m| m.domains[1].name = name, ManifestProblem::BadName { domain: 1 }, "name");
    }
}

#[test]
fn duplicate_name() {
    refused(
        |m| m.domains[1].name = "a",
        ManifestProblem::DuplicateName { domain: 1, first: 0 },
        "same name as domain 0",
    );
}

#[test]
fn module_index() {
    refused(
        |m| m.domains[1].module = 1,
        ManifestProblem::ModuleIndex { domain: 1, module: 1, modules: 1 },
        "only 1 modules",
    );
}

#[test]
fn module_out_of_bounds() {
    let problem = |size| ManifestProblem::ModuleOutOfBounds {
        module: 0,
        offset: 4096,
        size,
        payload: PAYLOAD,
    };
    refused(|m| m.modules[0].size = 101, problem(101), "past the 4196-byte payload");
    refused(|m| m.modules[0].size = u64::MAX, problem(u64::MAX), "past");
}

#[test]
fn module_misaligned() {
    refused(
        |m| m.modules[0].offset = 4095,
        ManifestProblem::ModuleMisaligned { module: 0, offset: 4095 },
        "not a multiple of 4096",
    );
}

#[test]
fn module_overlap() {
    let second = ModuleRef { name: "second", offset: 4096, size: 0 };
    refused(
        |m| m.modules.push(second),
        ManifestProblem::ModuleOverlap { module: 1, offset: 4096, start: 4196 },
        "before offset 4196",
    );
    // Bundle::parse asks for modules after the manifest bytes.
    assert_eq!(
        good().check(4097, PAYLOAD),
        Err(ManifestProblem::ModuleOverlap { module: 0, offset: 4096, start: 4097 })
    );
}

#[test]
fn vcpus_out_of_range() {
    for vcpus in [0, MAX_VCPUS + 1] {
        refused(
            |m| m.domains[0].vcpus = vcpus,
            ManifestProblem::VcpusOutOfRange { domain: 0, vcpus },
            "outside 1 to 8",
        );
    }
}

#[test]
fn memory_out_of_range() {
    for memory_mib in [0, DOMAIN_MEMORY_MAX_MIB + 1] {
        refused(
            |m| m.domains[0].memory_mib = memory_mib,
            ManifestProblem::MemoryOutOfRange { domain: 0, memory_mib },
            "outside 1 to 4096 MiB",
        );
    }
}

#[test]
fn weight_out_of_range() {
    refused(
        |m| m.domains[0].weight = 0,
        ManifestProblem::WeightOutOfRange { domain: 0 },
        "weight of 0",
    );
}

#[test]
fn cap_out_of_range() {
    refused(
        |m| (m.domains[0].vcpus, m.domains[0].cap) = (2, 201),
        ManifestProblem::CapOutOfRange { domain: 0, cap: 201, vcpus: 2 },
        "above 200%",
    );
}

#[test]
fn empty_affinity() {
    refused(
        |m| m.domains[0].hard_affinity = 0,
        ManifestProblem::EmptyAffinity { domain: 0, soft: false },
        "hard affinity",
    );
    refused(
        |m| m.domains[0].soft_affinity = 0,
        ManifestProblem::EmptyAffinity { domain: 0, soft: true },
        "soft affinity",
    );
}

#[test]
fn empty_device() {
    refused(
        |m| m.domains[0].capabilities = vec![Capability::Hardware { device: "" }],
        ManifestProblem::EmptyDevice { domain: 0, capability: 0 },
        "empty name",
    );
}

#[test]
fn capability_target() {
    let problem = ManifestProblem::CapabilityTarget { domain: 0, capability: 1 };
    for capability in [
        Capability::DeviceModel { target: "c" },
        Capability::DeviceModel { target: "a" },
        Capability::Introspect { target: "c" },
        Capability::Introspect { target: "a" },
    ] {
        refused(
            |m| m.domains[0].capabilities = vec![Capability::Console, capability],
            problem,
            "not in the manifest, or domain 0 itself",
        );
    }
}

#[test]
fn duplicate_capability() {
    let dm = Capability::DeviceModel { target: "b" };
    refused(
        |m| m.domains[0].capabilities = vec![dm, Capability::Console, dm],
        ManifestProblem::DuplicateCapability { domain: 0, capability: 2 },
        "repeats",
    );
}

#[test]
fn duplicate_xenstore() {
    refused(
        |m| {
            m.domains.push(domain("c"));
            m.domains[0].capabilities = vec![Capability::Xenstore];
            m.domains[2].capabilities = vec![Capability::Console, Capability::Xenstore];
        },
        ManifestProblem::DuplicateXenstore { domain: 2, first: 0 },
        "domains 0 and 2 both hold `xenstore`",
    );
}

#[test]
fn boot_image_presence() {
    refused(
        |m| m.domains[1].prepared = None,
        ManifestProblem::BootImagePresence { domain: 1, boot: true },
        "domain 1 is built at boot but has no prepared image",
    );
    refused(
        |m| m.domains[0].boot = false,
        ManifestProblem::BootImagePresence { domain: 0, boot: false },
        "not built at boot but has a prepared image",
    );
    let mut manifest = good();
    (manifest.domains[0].boot, manifest.domains[0].prepared) = (false, None);
    assert_eq!(manifest.validate(PAYLOAD), Ok(()));
}

#[test]
fn chunk_count() {
    refused(
        |m| m.domains[0].prepared = Some(image(&[])),
        ManifestProblem::ChunkCount { domain: 0, chunks: 0 },
        "has 0 chunks, not 1 to 32",
    );
    let many: Vec<(u64, u64, u64)> =
        (0..=MAX_LOAD_CHUNKS as u64).map(|i| (GUEST_RAM0_BASE + i, i, 1)).collect();
    refused(
        |m| m.domains[1].prepared = Some(image(&many)),
        ManifestProblem::ChunkCount { domain: 1, chunks: MAX_LOAD_CHUNKS + 1 },
        "has 33 chunks",
    );
    let most = &many[..MAX_LOAD_CHUNKS];
    let mut manifest = good();
    manifest.domains[1].prepared = Some(image(most));
    assert_eq!(manifest.validate(PAYLOAD), Ok(()));
}

#[test]
fn chunk_bytes() {
    let base = GUEST_RAM0_BASE;
    for bad in [(base, 0, 0), (base, 0, 101), (base, 100, 1), (base, u64::MAX, 2)] {
        refused(
            |m| m.domains[0].prepared = Some(image(&[(base, 0, 1), bad])),
            ManifestProblem::ChunkBytes { domain: 0, chunk: 1 },
            "chunk 1 of domain 0's prepared image is empty or not inside its module",
        );
    }
    refused(
        |m| m.domains[0].prepared.as_mut().unwrap().chunks[0].module = 1,
        ManifestProblem::ChunkBytes { domain: 0, chunk: 0 },
        "not inside its module",
    );
}

#[test]
fn chunk_outside_ram() {
    let end = GUEST_RAM0_BASE + (16 << 20);
    for bad in [(GUEST_RAM0_BASE - 1, 0, 2), (end - 99, 0, 100), (u64::MAX - 10, 0, 100)] {
        refused(
            |m| m.domains[1].prepared = Some(image(&[bad])),
            ManifestProblem::ChunkOutsideRam { domain: 1, chunk: 0 },
            "lies outside the domain's RAM",
        );
    }
    let mut manifest = good();
    manifest.domains[1].prepared = Some(image(&[(end - 100, 0, 100)]));
    assert_eq!(manifest.validate(PAYLOAD), Ok(()));
}

#[test]
fn chunk_overlap() {
    let base = GUEST_RAM0_BASE;
    refused(
        |m| {
            m.domains[0].prepared =
                Some(image(&[(base, 0, 10), (base + 20, 0, 10), (base + 29, 0, 2)]))
        },
        ManifestProblem::ChunkOverlap { domain: 0, chunk: 2, other: 1 },
        "chunks 1 and 2 of domain 0's prepared image overlap",
    );
    let mut manifest = good();
    manifest.domains[0].prepared = Some(image(&[(base + 10, 0, 10), (base, 0, 10)]));
    assert_eq!(manifest.validate(PAYLOAD), Ok(()));
}

#[test]
fn bad_entry() {
    for entry in [GUEST_RAM0_BASE + 2, GUEST_RAM0_BASE - 4, GUEST_RAM0_BASE + (16 << 20)] {
        refused(
            |m| m.domains[0].prepared.as_mut().unwrap().entry = entry,
            ManifestProblem::BadEntry { domain: 0, entry },
            "is not a 4-byte-aligned address in its RAM",
        );
    }
}

#[test]
fn capability_spellings() {
    let all = [
        ("control", Capability::Control),
        ("xenstore", Capability::Xenstore),
        ("console", Capability::Console),
        ("dm:guest1", Capability::DeviceModel { target: "guest1" }),
        ("hardware:uart@9000000", Capability::Hardware { device: "uart@9000000" }),
        ("introspect:g", Capability::Introspect { target: "g" }),
    ];
    for (text, capability) in all {
        assert_eq!(Capability::parse(text), Some(capability), "{text}");
        assert_eq!(capability.to_string(), text);
    }
    for bad in ["", "Control", "dm", "dm:", "hardware:", "introspect:", "vmi:x", ":x"] {
        assert_eq!(Capability::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn restart_spellings() {
    for policy in RestartPolicy::ALL {
        assert_eq!(RestartPolicy::parse(policy.as_str()), Some(policy));
    }
    assert_eq!(RestartPolicy::parse("on-crash"), Some(RestartPolicy::OnCrash));
    assert_eq!(RestartPolicy::parse("on_crash"), None);
}

#[test]
fn shutdown_actions_follow_xl_per_reason() {
    use crate::xen::sched::{
        SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot, SHUTDOWN_soft_reset, SHUTDOWN_suspend,
        SHUTDOWN_watchdog,
    };
    let actions = ShutdownActions {
        poweroff: ShutdownAction::Preserve,
        reboot: ShutdownAction::Restart,
        crash: ShutdownAction::Destroy,
    };
    assert_eq!(actions.for_reason(SHUTDOWN_poweroff), ShutdownAction::Preserve);
    for reboot in [SHUTDOWN_reboot, SHUTDOWN_suspend, SHUTDOWN_soft_reset] {
        assert_eq!(actions.for_reason(reboot), ShutdownAction::Restart);
    }
    for crash in [SHUTDOWN_crash, SHUTDOWN_watchdog] {
        assert_eq!(actions.for_reason(crash), ShutdownAction::Destroy);
    }
    assert_eq!(
        RestartPolicy::OnCrash.actions().for_reason(SHUTDOWN_reboot),
        ShutdownAction::Destroy
    );
    assert_eq!(RestartPolicy::OnCrash.actions().crash, ShutdownAction::Restart);
    for action in ShutdownAction::ALL {
        assert_eq!(ShutdownAction::parse(action.as_str()), Some(action));
    }
    assert_eq!(ShutdownAction::parse("rename-restart"), None);
}

/// Domain 0 given QEMU virt's last virtio-mmio page, its SPI and a 1 MiB window at 0x7ff00000.
fn with_hardware(manifest: &mut BootManifest<'static>) {
    let domain = &mut manifest.domains[0];
    domain.capabilities.push(Capability::Hardware { device: "virtio-console" });
    domain.passthrough = Passthrough {
        iomem: vec![FrameRange { first: 0xa003, count: 1 }],
        irqs: vec![79],
        direct_map: Some(FrameRange { first: 0x7ff00, count: 256 }),
    };
}

#[test]
fn passthrough_is_checked_alone_and_across_domains() {
    use PassthroughProblem::*;
    let mut manifest = good();
    with_hardware(&mut manifest);
    assert_eq!(manifest.validate(PAYLOAD), Ok(()));
    let problem = |domain, problem| ManifestProblem::Passthrough { domain, problem };
    let without_capability = |m: &mut BootManifest<'static>| {
        with_hardware(m);
        m.domains[0].capabilities.clear();
    };
    refused(without_capability, problem(0, NoCapability), "`hardware:` capability");
    let not_at_boot = |m: &mut BootManifest<'static>| {
        with_hardware(m);
        m.domains[0].boot = false;
        m.domains[0].prepared = None;
    };
    refused(not_at_boot, problem(0, NotBootDomain), "only boot domains");
    let empty = |m: &mut BootManifest<'static>| {
        with_hardware(m);
        m.domains[0].passthrough.iomem[0].count = 0;
    };
    refused(empty, problem(0, BadRange { iomem: Some(0) }), "iomem range 0 is empty");
    let beyond = |m: &mut BootManifest<'static>| {
        with_hardware(m);
        m.domains[0].passthrough.direct_map = Some(FrameRange { first: 1 << 28, count: 1 });
    };
    refused(beyond, problem(0, BadRange { iomem: None }), "the direct_map window is empty");
    // The window inside the domain's own RAM (16 MiB at GUEST_RAM0_BASE), then on the vGIC.
    let in_ram = |m: &mut BootManifest<'static>| {
        with_hardware(m);
        m.domains[0].passthrough.direct_map = Some(FrameRange { first: 0x40fff, count: 2 });
    };
    refused(in_ram, problem(0, Clash { iomem: None }), "overlaps the domain's RAM");
    let on_gic = |m: &mut BootManifest<'static>| {
        with_hardware(m);
        m.domains[0].passthrough.iomem.push(FrameRange { first: 0x3001, count: 1 });
    };
    refused(on_gic, problem(0, Clash { iomem: Some(1) }), "iomem range 1 overlaps");
    let twice = |m: &mut BootManifest<'static>| {
        with_hardware(m);
        m.domains[0].passthrough.iomem.push(FrameRange { first: 0xa000, count: 4 });
    };
    refused(twice, problem(0, Clash { iomem: Some(1) }), "another of its ranges");
    for (irqs, index) in [(vec![32], 0), (vec![96], 0), (vec![79, 79], 1)] {
        let bad_irq = |m: &mut BootManifest<'static>| {
            with_hardware(m);
            m.domains[0].passthrough.irqs = irqs;
        };
        refused(bad_irq, problem(0, BadIrq { irq: index }), "not an SPI in 33..96");
    }
    // The same interrupt, or an overlapping frame, for two domains.
    let shared = |m: &mut BootManifest<'static>| {
        with_hardware(m);
        m.domains[1].capabilities.push(Capability::Hardware { device: "other" });
        m.domains[1].passthrough.irqs = vec![79];
    };
    refused(shared, ManifestProblem::SharedHardware { domain: 1, first: 0 }, "domain 0 is given");
    let shared_window = |m: &mut BootManifest<'static>| {
        with_hardware(m);
        m.domains[1].capabilities.push(Capability::Hardware { device: "other" });
        m.domains[1].passthrough.iomem = vec![FrameRange { first: 0x7ffff, count: 1 }];
    };
    refused(shared_window, ManifestProblem::SharedHardware { domain: 1, first: 0 }, "frame");
}
