//! Host tests of [`plan`]: a minimal ELF executable and a minimal arm64 Image, built here, are
//! planned for small domains; every chunk, the entry, the registers and the device tree's place
//! and content are checked, and every [`PlanError`] is provoked.

use super::*;
use xenolith_abi::xen::arch_arm::GUEST_RAM0_BASE;

const MIB: u64 = 1 << 20;
const RAM0: u64 = GUEST_RAM0_BASE;

fn config(memory_mib: u32, vcpus: u32) -> DomainConfig<'static> {
    DomainConfig { memory_mib, vcpus, cmdline: "console=hvc0" }
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
    let config = DomainConfig { memory_mib: 64, vcpus: 8, cmdline: "" };
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

#[test]
fn the_plan_is_deterministic() {
    let config = DomainConfig { memory_mib: 256, vcpus: 4, cmdline: "console=hvc0 quiet" };
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
