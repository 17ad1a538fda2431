//! Host tests of [`plan`]: a minimal ELF executable and a minimal arm64 Image, built here, are
//! planned for small domains; every chunk, the entry, the registers and the device tree's place
//! and content are checked, and every [`PlanError`] is provoked.

use super::*;
use xenolith_abi::xen::arch_arm::GUEST_RAM0_BASE;

const MIB: u64 = 1 << 20;
const RAM0: u64 = GUEST_RAM0_BASE;

fn config(memory_mib: u32, vcpus: u32) -> DomainConfig<'static> {
    DomainConfig {
        memory_mib,
        vcpus,
        cmdline: "console=hvc0",
        initrd_size: None,
        hardware: Default::default(),
        emulated: Default::default(),
    }
}

/// An AArch64 executable entered at `entry`: one `PT_LOAD` per `(address, bytes, memory size)`,
/// the program headers at 0x40, each segment's bytes after them in order.
fn elf(entry: u64, segments: &[(u64, &[u8], u64)]) -> Vec<u8> {
    let headers_end = 0x40 + 56 * segments.len();
    let mut bytes = vec![0u8; headers_end];
    bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
    bytes[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    bytes[0x12..0x14].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    bytes[0x18..0x20].copy_from_slice(&entry.to_le_bytes());
    bytes[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
    bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    bytes[0x38..0x3a].copy_from_slice(&(segments.len() as u16).to_le_bytes());
    for (index, &(address, data, memory_size)) in segments.iter().enumerate() {
        let header = 0x40 + 56 * index;
        let file_offset = bytes.len() as u64;
        let field = |bytes: &mut Vec<u8>, at: usize, value: u64| {
            bytes[header + at..header + at + 8].copy_from_slice(&value.to_le_bytes());
        };
        bytes[header..header + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        field(&mut bytes, 8, file_offset);
        field(&mut bytes, 16, address);
        field(&mut bytes, 24, address);
        field(&mut bytes, 32, data.len() as u64);
        field(&mut bytes, 40, memory_size);
        bytes.extend_from_slice(data);
    }
    bytes
}

/// An arm64 Image: the 64-byte header (little-endian, 4 KiB pages, placement anywhere), then
/// `body` bytes.
fn image(text_offset: u64, image_size: u64, body: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; 64];
    bytes[8..16].copy_from_slice(&text_offset.to_le_bytes());
    bytes[16..24].copy_from_slice(&image_size.to_le_bytes());
    bytes[24..32].copy_from_slice(&0b1010u64.to_le_bytes());
    bytes[0x38..0x3c].copy_from_slice(b"ARM\x64");
    bytes.resize(64 + body, 0x5a);
    bytes
}

/// Checks the device tree describes the configuration: RAM, vCPUs, command line.
fn check_dtb(plan: &Plan, config: &DomainConfig<'_>) {
    assert!(plan.dtb.len() as u64 <= DTB_SPACE);
    let fdt = fdt::Fdt::new(&plan.dtb).unwrap();
    let memory = fdt.find_node(&format!("/memory@{RAM0:x}")).unwrap();
    let reg: Vec<u8> = memory.property("reg").unwrap().value.to_vec();
    let ram = u64::from(config.memory_mib) * MIB;
    assert_eq!(reg, [RAM0.to_be_bytes(), ram.to_be_bytes()].concat());
    assert_eq!(fdt.cpus().count(), config.vcpus as usize);
    let bootargs = fdt.chosen().bootargs();
    assert_eq!(bootargs, Some(config.cmdline).filter(|line| !line.is_empty()));
    assert!(fdt.find_node("/hypervisor").is_some());
}

#[test]
fn plans_an_elf_executable() {
    let code = [0xd5, 0x03, 0x20, 0x1f, 1, 2, 3, 4];
    let data = [9u8; 12];
    let bytes = elf(
        RAM0 + 0x4,
        &[
            (RAM0, &code, 0x1000),
            (RAM0 + 0x1_0000, &data, 0x3000), // data, then zeroed bss
            (RAM0 + 0x2_0000, &[], 0x5000),   // bss alone: nothing to copy
        ],
    );
    let config = config(16, 2);
    let plan = plan(&bytes, &config).unwrap();
    let first = (0x40 + 3 * 56) as u64;
    assert_eq!(
        plan.chunks,
        [
            Chunk { address: RAM0, offset: first, size: 8 },
            Chunk { address: RAM0 + 0x1_0000, offset: first + 8, size: 12 },
        ]
    );
    for chunk in &plan.chunks {
        let copied = &bytes[chunk.offset as usize..][..chunk.size as usize];
        assert!(copied == code || copied == data);
    }
    assert_eq!(plan.entry, RAM0 + 0x4);
    assert_eq!(plan.dtb_address, RAM0 + 16 * MIB - DTB_SPACE);
    assert_eq!(plan.dtb_address % 8, 0, "booting.rst: the DTB on an 8-byte boundary");
    assert_eq!(plan.registers, [plan.dtb_address, 0, 0, 0]);
    check_dtb(&plan, &config);
}

#[test]
fn an_elf_segment_may_end_exactly_at_the_dtb() {
    let limit = RAM0 + MIB - DTB_SPACE;
    let bytes = elf(limit - 0x1000, &[(limit - 0x1000, &[1; 16], 0x1000)]);
    let plan = plan(&bytes, &config(1, 1)).unwrap();
    assert_eq!(plan.dtb_address, limit);
    assert_eq!(plan.chunks, [Chunk { address: limit - 0x1000, offset: 0x78, size: 16 }]);

    let bytes = elf(limit - 0x1000, &[(limit - 0x1000, &[1; 16], 0x1001)]);
    assert_eq!(
        plan_error(&bytes, &config(1, 1)),
        PlanError::DoesNotFit { address: limit - 0x1000, size: 0x1001, limit }
    );
}

#[test]
fn plans_an_arm64_image() {
    let bytes = image(0, 2 * MIB, 0x1000);
    let config = DomainConfig {
        memory_mib: 64,
        vcpus: 8,
        cmdline: "",
        initrd_size: None,
        hardware: Default::default(),
        emulated: Default::default(),
    };
    let plan = plan(&bytes, &config).unwrap();
    assert_eq!(plan.chunks, [Chunk { address: RAM0, offset: 0, size: 0x1040 }]);
    assert_eq!(plan.entry, RAM0);
    assert_eq!(plan.dtb_address, RAM0 + 64 * MIB - DTB_SPACE);
    assert_eq!(plan.registers, [plan.dtb_address, 0, 0, 0]);
    check_dtb(&plan, &config);

    // A text_offset moves the image and its entry above the 2 MiB aligned RAM base.
    let plan = plan_ok(&image(0x8_0000, 2 * MIB, 0x1000), &config);
    assert_eq!(plan.chunks, [Chunk { address: RAM0 + 0x8_0000, offset: 0, size: 0x1040 }]);
    assert_eq!(plan.entry, RAM0 + 0x8_0000);
}

#[test]
fn an_old_arm64_image_goes_at_0x80000() {
    let plan = plan_ok(&image(0x1234_5678, 0, 0x100), &config(4, 1));
    assert_eq!(plan.chunks, [Chunk { address: RAM0 + 0x8_0000, offset: 0, size: 0x140 }]);
    assert_eq!(plan.entry, RAM0 + 0x8_0000);
}

#[test]
fn an_arm64_image_must_fit_below_the_dtb() {
    let limit = RAM0 + MIB - DTB_SPACE;
    // The whole image_size, not just the file, must fit.
    let room = MIB - DTB_SPACE;
    assert!(plan(&image(0, room, 0x100), &config(1, 1)).is_ok());
    assert_eq!(
        plan_error(&image(0, room + 0x1000, 0x100), &config(1, 1)),
        PlanError::DoesNotFit { address: RAM0, size: room + 0x1000, limit }
    );
    assert_eq!(
        plan_error(&image(0x10_0000, 0x1000, 0x100), &config(1, 1)),
        PlanError::DoesNotFit { address: RAM0 + 0x10_0000, size: 0x1000, limit }
    );
    // A text_offset that would wrap the address space.
    let error = plan_error(&image(!0xfff, 0x1000, 0x100), &config(1, 1));
    assert!(matches!(error, PlanError::DoesNotFit { size: 0x1000, .. }), "{error:?}");
}

/// `config` with an initrd of `size` bytes.
fn with_initrd(config: DomainConfig<'static>, size: u64) -> DomainConfig<'static> {
    DomainConfig { initrd_size: Some(size), ..config }
}

/// The initrd `plan` placed, checked against its device tree and everything else it placed.
#[track_caller]
fn check_initrd(plan: &Plan, size: u64, kernel_end: u64) -> u64 {
    let address = plan.initrd_address.expect("an initrd address");
    assert_eq!(address % INITRD_ALIGN, 0);
    assert!(address >= RAM0 && address + size <= plan.dtb_address);
    assert!(address >= kernel_end || address + size <= plan.chunks[0].address);
    for chunk in &plan.chunks {
        let disjoint = chunk.address + chunk.size <= address || address + size <= chunk.address;
        assert!(disjoint, "{chunk:x?} and the initrd at {address:#x}");
    }
    let fdt = fdt::Fdt::new(&plan.dtb).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    let start = chosen.property("linux,initrd-start").unwrap().value;
    let end = chosen.property("linux,initrd-end").unwrap().value;
    assert_eq!(start, address.to_be_bytes());
    assert_eq!(end, (address + size).to_be_bytes(), "exclusive end, exact size");
    address
}

#[test]
fn an_initrd_goes_at_128_mib_when_the_kernel_ends_below_it() {
    // Debian's kernel: image_size 0x2010000, text_offset 0, in 256 MiB.
    let kernel = image(0, 0x201_0000, 0x1000);
    let plan = plan_ok(&kernel, &with_initrd(config(256, 2), 3 * MIB + 5));
    assert_eq!(check_initrd(&plan, 3 * MIB + 5, RAM0 + 0x201_0000), RAM0 + 128 * MIB);
    // Up to the DTB exactly: still at 128 MiB.
    let room = 128 * MIB - DTB_SPACE;
    let plan = plan_ok(&kernel, &with_initrd(config(256, 1), room));
    assert_eq!(check_initrd(&plan, room, RAM0 + 0x201_0000), RAM0 + 128 * MIB);
    // An ELF guest too.
    let bytes = elf(RAM0, &[(RAM0, &[1; 64], 0x1000)]);
    let plan = plan_ok(&bytes, &with_initrd(config(256, 1), 4096));
    assert_eq!(check_initrd(&plan, 4096, RAM0 + 0x1000), RAM0 + 128 * MIB);
    // No initrd: no address, no properties.
    let plan = plan_ok(&kernel, &config(256, 1));
    assert_eq!(plan.initrd_address, None);
    let fdt = fdt::Fdt::new(&plan.dtb).unwrap();
    assert!(fdt.find_node("/chosen").unwrap().property("linux,initrd-start").is_none());
}

#[test]
fn an_initrd_goes_below_the_dtb_when_128_mib_has_no_room() {
    let kernel = image(0, 0x201_0000, 0x1000);
    // 128 MiB of RAM: nothing above 128 MiB; the initrd ends on the DTB's page, its size rounded
    // up to whole pages.
    let limit = RAM0 + 128 * MIB - DTB_SPACE;
    let plan = plan_ok(&kernel, &with_initrd(config(128, 1), 10 * MIB + 1));
    let expected = limit - (10 * MIB + INITRD_ALIGN);
    assert_eq!(check_initrd(&plan, 10 * MIB + 1, RAM0 + 0x201_0000), expected);
    // 256 MiB, but the initrd does not fit above 128 MiB.
    let plan = plan_ok(&kernel, &with_initrd(config(256, 1), 128 * MIB));
    let limit = RAM0 + 256 * MIB - DTB_SPACE;
    assert_eq!(check_initrd(&plan, 128 * MIB, RAM0 + 0x201_0000), limit - 128 * MIB);
    // A kernel reaching past 128 MiB.
    let big = image(0, 130 * MIB, 0x1000);
    let plan = plan_ok(&big, &with_initrd(config(256, 1), MIB));
    assert_eq!(check_initrd(&plan, MIB, RAM0 + 130 * MIB), limit - MIB);
}

#[test]
fn an_initrd_goes_below_the_kernel_as_a_last_resort() {
    // An ELF guest high in 16 MiB of RAM: no room above it, 8 MiB below.
    let base = RAM0 + 8 * MIB;
    let bytes = elf(base, &[(base, &[1; 64], 8 * MIB - DTB_SPACE)]);
    let plan = plan_ok(&bytes, &with_initrd(config(16, 1), 2 * MIB));
    assert_eq!(check_initrd(&plan, 2 * MIB, RAM0 + 16 * MIB - DTB_SPACE), base - 2 * MIB);
    // Too big for the room below too.
    let error = plan_error(&bytes, &with_initrd(config(16, 1), 8 * MIB + 1));
    assert_eq!(
        error,
        PlanError::InitrdDoesNotFit {
            size: 8 * MIB + INITRD_ALIGN,
            kernel_start: base,
            kernel_end: RAM0 + 16 * MIB - DTB_SPACE,
            limit: RAM0 + 16 * MIB - DTB_SPACE,
        }
    );
}

#[test]
fn refuses_an_initrd_that_does_not_fit_or_is_empty() {
    let kernel = image(0, 0x201_0000, 0x1000);
    let error = plan_error(&kernel, &with_initrd(config(64, 1), 32 * MIB));
    assert_eq!(
        error,
        PlanError::InitrdDoesNotFit {
            size: 32 * MIB,
            kernel_start: RAM0,
            kernel_end: RAM0 + 0x201_0000,
            limit: RAM0 + 64 * MIB - DTB_SPACE,
        }
    );
    assert!(error.to_string().contains("give the domain more memory"), "{error}");
    assert!(plan(&kernel, &with_initrd(config(64, 1), 31 * MIB)).is_ok());
    assert_eq!(plan_error(&kernel, &with_initrd(config(64, 1), 0)), PlanError::InitrdEmpty);
    let huge = plan_error(&kernel, &with_initrd(config(64, 1), u64::MAX));
    assert!(matches!(huge, PlanError::InitrdDoesNotFit { .. }), "{huge:?}");
}

#[test]
fn the_plan_is_deterministic() {
    let config = DomainConfig {
        memory_mib: 256,
        vcpus: 4,
        cmdline: "console=hvc0 quiet",
        initrd_size: None,
        hardware: Default::default(),
        emulated: Default::default(),
    };
    for bytes in [image(0, 4 * MIB, 0x2000), elf(RAM0, &[(RAM0, &[7; 64], 0x1000)])] {
        let first = plan_ok(&bytes, &config);
        let second = plan_ok(&bytes, &config);
        assert_eq!(first, second);
        assert_eq!(first.dtb, second.dtb, "byte-identical DTB");
    }
}

#[test]
fn refuses_bad_configurations() {
    let bytes = image(0, MIB, 0x100);
    assert_eq!(plan_error(&bytes, &config(16, 0)), PlanError::VcpuCount { vcpus: 0 });
    assert_eq!(plan_error(&bytes, &config(16, 9)), PlanError::VcpuCount { vcpus: 9 });
    assert!(plan(&bytes, &config(16, MAX_VCPUS)).is_ok());
    assert_eq!(plan_error(&bytes, &config(0, 1)), PlanError::MemorySize { memory_mib: 0 });
    assert!(plan(&bytes, &config(3072, 1)).is_ok(), "all of GUEST_RAM0");
    assert_eq!(plan_error(&bytes, &config(3073, 1)), PlanError::MemorySize { memory_mib: 3073 });
    let most = plan_error(&bytes, &config(u32::MAX, 1));
    assert_eq!(most, PlanError::MemorySize { memory_mib: u32::MAX });
}

#[test]
fn refuses_unknown_formats() {
    assert_eq!(
        plan_error(b"#!/bin/sh\n", &config(16, 1)),
        PlanError::UnknownFormat { start: *b"#!/b", length: 10 }
    );
    assert_eq!(
        plan_error(&[0x4d, 0x5a], &config(16, 1)),
        PlanError::UnknownFormat { start: [0x4d, 0x5a, 0, 0], length: 2 }
    );
    assert_eq!(
        plan_error(&[], &config(16, 1)),
        PlanError::UnknownFormat { start: [0; 4], length: 0 }
    );
    // An Image header without its magic is not recognised as one.
    let mut bytes = image(0, MIB, 0x100);
    bytes[0x38] = b'X';
    assert!(matches!(plan_error(&bytes, &config(16, 1)), PlanError::UnknownFormat { .. }));
}

#[test]
fn refuses_bad_elf_files() {
    let mut bytes = elf(RAM0, &[(RAM0, &[1; 8], 0x1000)]);
    bytes[4] = 1; // ELFCLASS32
    assert_eq!(plan_error(&bytes, &config(16, 1)), PlanError::Elf(ElfError::NotElf64));
    let bytes = elf(RAM0 + 0x2000, &[(RAM0, &[1; 8], 0x1000)]);
    assert_eq!(
        plan_error(&bytes, &config(16, 1)),
        PlanError::Elf(ElfError::EntryOutside { entry: RAM0 + 0x2000 })
    );
    // Below RAM: a segment at the magic pages.
    let bytes = elf(0x3900_0000, &[(0x3900_0000, &[1; 8], 0x1000)]);
    assert_eq!(
        plan_error(&bytes, &config(16, 1)),
        PlanError::DoesNotFit {
            address: 0x3900_0000,
            size: 0x1000,
            limit: RAM0 + 16 * MIB - DTB_SPACE
        }
    );
}

#[test]
fn refuses_bad_arm64_images() {
    let gzip = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0, 0];
    assert_eq!(plan_error(&gzip, &config(16, 1)), PlanError::Image(ImageError::Gzip));
    let message = plan_error(&gzip, &config(16, 1)).to_string();
    assert!(message.contains("gzip") && message.contains("decompress it first"), "{message}");
    let mut big_endian = image(0, MIB, 0x100);
    big_endian[24] |= 1;
    assert_eq!(plan_error(&big_endian, &config(16, 1)), PlanError::Image(ImageError::BigEndian));
    assert_eq!(
        plan_error(&image(0, 0x100, 0x100), &config(16, 1)),
        PlanError::Image(ImageError::SizeBelowFile { image_size: 0x100, file_size: 0x140 })
    );
    assert_eq!(
        plan_error(&image(0x800, MIB, 0x100), &config(16, 1)),
        PlanError::Image(ImageError::TextOffsetMisaligned { text_offset: 0x800 })
    );
}

#[test]
fn refuses_a_command_line_the_dtb_cannot_carry() {
    let bytes = image(0, MIB, 0x100);
    let with_nul = DomainConfig { cmdline: "console=hvc0\0root=/dev/xvda", ..config(16, 1) };
    assert_eq!(plan_error(&bytes, &with_nul), PlanError::Dtb(DtbError::Bootargs));

    let long = "x".repeat(DTB_SPACE as usize);
    let too_long = DomainConfig { cmdline: &long, ..config(16, 1) };
    let error = plan_error(&bytes, &too_long);
    let PlanError::DtbTooLarge { size } = error else { panic!("{error:?}") };
    assert!(size as u64 > DTB_SPACE);
    // The largest line that still fits is accepted.
    let fits = "x".repeat(DTB_SPACE as usize - (size - long.len()));
    let plan = plan_ok(&bytes, &DomainConfig { cmdline: &fits, ..config(16, 1) });
    assert_eq!(plan.dtb.len() as u64, DTB_SPACE);
}

#[test]
fn every_error_has_a_sentence() {
    let errors = [
        PlanError::VcpuCount { vcpus: 9 },
        PlanError::MemorySize { memory_mib: 0 },
        PlanError::UnknownFormat { start: *b"MZ\x90\x00", length: 300 },
        PlanError::UnknownFormat { start: [0; 4], length: 0 },
        PlanError::Elf(ElfError::NoSegments),
        PlanError::Image(ImageError::BigEndian),
        PlanError::DoesNotFit { address: RAM0, size: MIB, limit: RAM0 + 0x1000 },
        PlanError::Dtb(DtbError::Bootargs),
        PlanError::DtbTooLarge { size: 70_000 },
        PlanError::InitrdEmpty,
        PlanError::InitrdDoesNotFit {
            size: MIB,
            kernel_start: RAM0,
            kernel_end: RAM0,
            limit: RAM0,
        },
    ];
    for error in errors {
        let message = error.to_string();
        assert!(message.len() > 30 && !message.ends_with('.'), "{message}");
    }
    let message = PlanError::UnknownFormat { start: *b"MZ\x90\x00", length: 300 }.to_string();
    assert!(message.ends_with("starts with 4d 5a 90 00"), "{message}");
}

fn plan_ok(image: &[u8], config: &DomainConfig<'_>) -> Plan {
    plan(image, config).unwrap_or_else(|error| panic!("{error}"))
}

fn plan_error(image: &[u8], config: &DomainConfig<'_>) -> PlanError {
    plan(image, config).expect_err("the plan is refused")
}

#[test]
fn emulated_devices_are_placed_as_libxl_places_them() {
    let emulated = Emulated { uart: true, virtio_mmio: 2 };
    let config = DomainConfig { emulated, ..config(64, 1) };
    let planned = plan_ok(&image(0, 2 * MIB, 0x100), &config);
    check_dtb(&planned, &config);
    let fdt = fdt::Fdt::new(&planned.dtb).unwrap();
    let uart = fdt.chosen().stdout().expect("stdout-path names the UART");
    assert_eq!(uart.name, "sbsa-uart@22000000");
    let interrupts = |node: fdt::node::FdtNode<'_, '_>| -> Vec<u8> {
        node.property("interrupts").unwrap().value.to_vec()
    };
    let cells =
        |words: [u32; 3]| -> Vec<u8> { words.iter().flat_map(|w| w.to_be_bytes()).collect() };
    assert_eq!(interrupts(uart), cells([0, 0, 0xf04]), "INTID 32, level high");
    let virtio: Vec<_> = fdt.all_nodes().filter(|node| node.name.starts_with("virtio@")).collect();
    let names: Vec<&str> = virtio.iter().map(|node| node.name).collect();
    assert_eq!(names, ["virtio@2000000", "virtio@2000200"]);
    assert_eq!(interrupts(virtio[0]), cells([0, 1, 0xf01]), "INTID 33, rising edge");
    assert_eq!(interrupts(virtio[1]), cells([0, 2, 0xf01]), "INTID 34, rising edge");

    // None by default; eleven at most, as libxl.
    let plain = plan_ok(&image(0, 2 * MIB, 0x100), &config_64());
    let fdt = fdt::Fdt::new(&plain.dtb).unwrap();
    assert!(fdt.chosen().stdout().is_none());
    assert!(!fdt.all_nodes().any(|node| node.name.starts_with("virtio@")));
    let most = DomainConfig { emulated: Emulated { uart: false, virtio_mmio: 11 }, ..config_64() };
    assert!(plan(&image(0, 2 * MIB, 0x100), &most).is_ok());
    let too_many = DomainConfig { emulated: Emulated { uart: false, virtio_mmio: 12 }, ..most };
    assert_eq!(
        plan_error(&image(0, 2 * MIB, 0x100), &too_many),
        PlanError::Dtb(DtbError::VirtioMmio)
    );
}

fn config_64() -> DomainConfig<'static> {
    config(64, 1)
}
