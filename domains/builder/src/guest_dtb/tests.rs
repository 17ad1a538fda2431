//! Host tests of the guest device tree: each tree is read back with the `fdt` crate and checked
//! for everything a Linux arm64 Xen guest reads, and decompiled with `dtc` when it is installed.

use super::*;
use xenolith_abi::xen::arch_arm::{
    GUEST_PL011_BASE, GUEST_RAM0_BASE, GUEST_RAM1_BASE, GUEST_VPL011_SPI,
};

const MIB: u64 = 1 << 20;

fn spec(vcpus: u32, ram: &[(u64, u64)]) -> GuestDtbSpec<'_> {
    GuestDtbSpec {
        vcpus,
        ram,
        bootargs: "console=hvc0 earlycon=xenboot",
        initrd: None,
        clock_frequency: None,
        gic_redistributors: vcpus,
        console_uart: None,
        virtio_mmio: &[],
        address_bits: 40,
        hardware: Default::default(),
    }
}

fn cells(value: &[u8]) -> Vec<u32> {
    value.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect()
}

fn prop_cells(node: fdt::node::FdtNode<'_, '_>, name: &str) -> Vec<u32> {
    cells(node.property(name).unwrap_or_else(|| panic!("{} has no {name}", node.name)).value)
}

fn prop_str<'a>(node: fdt::node::FdtNode<'_, 'a>, name: &str) -> &'a str {
    node.property(name).and_then(|p| p.as_str()).unwrap_or_else(|| panic!("{name}"))
}

fn strlist<'a>(node: fdt::node::FdtNode<'_, 'a>, name: &str) -> Vec<&'a str> {
    let value = node.property(name).unwrap().value;
    assert_eq!(value.last(), Some(&0), "{name} ends with NUL");
    std::str::from_utf8(&value[..value.len() - 1]).unwrap().split('\0').collect()
}

/// `reg` as `(base, size)` pairs with two address and two size cells.
fn regs(node: fdt::node::FdtNode<'_, '_>) -> Vec<(u64, u64)> {
    let words = prop_cells(node, "reg");
    assert_eq!(words.len() % 4, 0);
    let join = |high: u32, low: u32| (u64::from(high) << 32) | u64::from(low);
    words.chunks_exact(4).map(|c| (join(c[0], c[1]), join(c[2], c[3]))).collect()
}

/// Checks everything common to every tree: what Linux reads to find Xen, and the platform.
fn check_platform(dtb: &[u8], vcpus: u32, ram: &[(u64, u64)]) {
    let fdt = fdt::Fdt::new(dtb).unwrap();
    assert_eq!(fdt.total_size(), dtb.len());
    assert_eq!(fdt.memory_reservations().count(), 0);
    let root = fdt.find_node("/").unwrap();
    assert_eq!(strlist(root, "compatible"), ["xen,xenvm-4.17", "xen,xenvm"]);
    assert_eq!(prop_str(root, "model"), "XENVM-4.17");
    assert_eq!(prop_cells(root, "#address-cells"), [2]);
    assert_eq!(prop_cells(root, "#size-cells"), [2]);
    assert_eq!(prop_cells(root, "interrupt-parent"), [65000]);

    // Linux `fdt_find_hyper_node`: a depth-1 node named exactly "hypervisor", compatible with
    // "xen,xen", whose first string is "xen,xen-" plus a version of at least 3 characters.
    let top_level: Vec<_> = root.children().map(|n| n.name).collect();
    assert!(top_level.contains(&"hypervisor"), "{top_level:?}");
    let hypervisor = fdt.find_node("/hypervisor").unwrap();
    assert_eq!(hypervisor.name, "hypervisor");
    let compatible = strlist(hypervisor, "compatible");
    assert_eq!(compatible, ["xen,xen-4.17", "xen,xen"]);
    let raw = hypervisor.property("compatible").unwrap().value;
    assert!("xen,xen-".len() + 3 < raw.len() && raw.starts_with(b"xen,xen-"));
    // `xen_dt_guest_init`: reg[0] is the grant table; interrupt 0 is the event channel PPI 31
    // (PPI 15), active-low level, all CPUs, from the GIC.
    // reg[1..] are the extended regions (checked by hand in `extended_regions_*`).
    let hypervisor_regs = regs(hypervisor);
    assert_eq!(hypervisor_regs[0], (GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE));
    assert_eq!(hypervisor_regs[1..], extended_regions(ram, 40));
    assert_eq!(prop_cells(hypervisor, "interrupts"), [1, 15, 0xf08]);
    assert_eq!(hypervisor.interrupt_parent().unwrap().name, "interrupt-controller@3001000");

    // The GIC: distributor, then one redistributor region covering every vCPU.
    let gic = fdt.find_node("/interrupt-controller@3001000").unwrap();
    assert_eq!(strlist(gic, "compatible"), ["arm,gic-v3"]);
    assert_eq!(prop_cells(gic, "#interrupt-cells"), [3]);
    assert_eq!(prop_cells(gic, "#address-cells"), [0]);
    assert_eq!(gic.property("interrupt-controller").unwrap().value, b"");
    assert_eq!(prop_cells(gic, "#redistributor-regions"), [1]);
    assert_eq!(prop_cells(gic, "phandle"), [65000]);
    assert_eq!(prop_cells(gic, "linux,phandle"), [65000]);
    let gic_regs = regs(gic);
    assert_eq!(gic_regs[0], (0x0300_1000, 0x1_0000));
    assert_eq!(gic_regs[1].0, 0x0302_0000);
    assert!(gic_regs[1].1 >= u64::from(vcpus) * 0x2_0000, "{gic_regs:x?}");
    assert!(gic_regs[1].1 <= GUEST_GICV3_GICR0_SIZE);

    // vCPUs: Xen's affinity in reg and in the node name, PSCI to start them.
    let cpus = fdt.find_node("/cpus").unwrap();
    assert_eq!(prop_cells(cpus, "#address-cells"), [1]);
    assert_eq!(prop_cells(cpus, "#size-cells"), [0]);
    let cpu_nodes: Vec<_> = cpus.children().collect();
    assert_eq!(cpu_nodes.len(), vcpus as usize);
    assert_eq!(fdt.cpus().count(), vcpus as usize);
    for (vcpu, cpu) in cpu_nodes.iter().enumerate() {
        let affinity = (vcpu as u32 & 0xf) | ((vcpu as u32 >> 4) << 8);
        assert_eq!(cpu.name, format!("cpu@{affinity:x}"));
        assert_eq!(prop_cells(*cpu, "reg"), [affinity]);
        assert_eq!(prop_str(*cpu, "device_type"), "cpu");
        assert_eq!(strlist(*cpu, "compatible"), ["arm,armv8"]);
        assert_eq!(prop_str(*cpu, "enable-method"), "psci");
    }
    let psci = fdt.find_node("/psci").unwrap();
    assert_eq!(strlist(psci, "compatible"), ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]);
    assert_eq!(prop_str(psci, "method"), "hvc");
    assert_eq!(prop_cells(psci, "cpu_off"), [1]);
    assert_eq!(prop_cells(psci, "cpu_on"), [2]);

    // RAM: one memory node per bank, exactly the banks given.
    let memory: Vec<_> = fdt.all_nodes().filter(|n| n.name.starts_with("memory@")).collect();
    assert_eq!(memory.len(), ram.len());
    for (node, &(base, size)) in memory.iter().zip(ram) {
        assert_eq!(node.name, format!("memory@{base:x}"));
        assert_eq!(prop_str(*node, "device_type"), "memory");
        assert_eq!(regs(*node), [(base, size)]);
    }

    // The timer: secure phys, non-secure phys, virt PPIs, active-low level, all CPUs.
    let timer = fdt.find_node("/timer").unwrap();
    assert_eq!(strlist(timer, "compatible"), ["arm,armv8-timer"]);
    assert_eq!(prop_cells(timer, "interrupts"), [1, 13, 0xf08, 1, 14, 0xf08, 1, 11, 0xf08]);
    assert_eq!(prop_cells(timer, "interrupt-parent"), [65000]);
}

#[test]
fn one_vcpu() {
    let ram = [(GUEST_RAM0_BASE, 128 * MIB)];
    let dtb = build(&spec(1, &ram)).unwrap();
    check_platform(&dtb, 1, &ram);
    let fdt = fdt::Fdt::new(&dtb).unwrap();
    assert_eq!(fdt.chosen().bootargs(), Some("console=hvc0 earlycon=xenboot"));
    let chosen = fdt.find_node("/chosen").unwrap();
    assert!(chosen.property("linux,initrd-start").is_none());
    assert!(chosen.property("stdout-path").is_none());
    assert!(fdt.find_node("/timer").unwrap().property("clock-frequency").is_none());
    assert!(!fdt.all_nodes().any(|n| n.name.starts_with("sbsa-uart")));
    assert_eq!(regs(fdt.find_node("/interrupt-controller").unwrap())[1].1, 0x2_0000);
}

#[test]
fn four_vcpus_two_banks_initrd_console_and_clock() {
    let ram = [(GUEST_RAM0_BASE, 512 * MIB), (GUEST_RAM1_BASE, 1024 * MIB)];
    let initrd = (GUEST_RAM0_BASE + 64 * MIB, 0x12_3456);
    let spec = GuestDtbSpec {
        initrd: Some(initrd),
        clock_frequency: Some(62_500_000),
        console_uart: Some((GUEST_PL011_BASE, GUEST_VPL011_SPI)),
        gic_redistributors: 8,
        ..spec(4, &ram)
    };
    let dtb = build(&spec).unwrap();
    check_platform(&dtb, 4, &ram);
    let fdt = fdt::Fdt::new(&dtb).unwrap();
    let names: Vec<_> = fdt.find_node("/cpus").unwrap().children().map(|n| n.name).collect();
    assert_eq!(names, ["cpu@0", "cpu@1", "cpu@2", "cpu@3"]);
    assert_eq!(regs(fdt.find_node("/interrupt-controller").unwrap())[1].1, 8 * 0x2_0000);

    let chosen = fdt.find_node("/chosen").unwrap();
    let start = chosen.property("linux,initrd-start").unwrap().value;
    let end = chosen.property("linux,initrd-end").unwrap().value;
    assert_eq!(start, initrd.0.to_be_bytes());
    assert_eq!(end, (initrd.0 + initrd.1).to_be_bytes());
    assert_eq!(prop_str(chosen, "stdout-path"), "/sbsa-uart@22000000");
    let uart = fdt.chosen().stdout().expect("stdout-path resolves");
    assert_eq!(uart.name, "sbsa-uart@22000000");
    assert_eq!(strlist(uart, "compatible"), ["arm,sbsa-uart"]);
    assert_eq!(regs(uart), [(GUEST_PL011_BASE, 0x1000)]);
    assert_eq!(prop_cells(uart, "interrupts"), [0, 0, 0xf04]);
    assert_eq!(prop_cells(uart, "interrupt-parent"), [65000]);
    assert_eq!(prop_cells(uart, "current-speed"), [115_200]);
    assert_eq!(prop_cells(fdt.find_node("/timer").unwrap(), "clock-frequency"), [62_500_000]);
}

#[test]
fn most_vcpus_fit_in_the_space_the_domain_builder_gives() {
    let ram = [(GUEST_RAM0_BASE, 256 * MIB)];
    let spec = GuestDtbSpec { bootargs: "", ..spec(GUEST_MAX_VCPUS, &ram) };
    let dtb = build(&spec).unwrap();
    check_platform(&dtb, GUEST_MAX_VCPUS, &ram);
    assert!(dtb.len() < 16 * 1024, "{} bytes", dtb.len());
    let fdt = fdt::Fdt::new(&dtb).unwrap();
    assert!(fdt.find_node("/chosen").unwrap().property("bootargs").is_none());
    assert!(fdt.find_node("/cpus/cpu@70f").is_some(), "vCPU 127 is Aff1 7, Aff0 15");
    assert_eq!(regs(fdt.find_node("/interrupt-controller").unwrap())[1].1, GUEST_GICV3_GICR0_SIZE);
}

#[test]
fn extended_regions_follow_libxl() {
    const GIB: u64 = 1 << 30;
    // 256 MiB in GUEST_RAM0: the rest of its 3 GiB, and all of GUEST_RAM1 (which ends at 1 TiB,
    // exactly the 40-bit limit).
    assert_eq!(
        extended_regions(&[(GUEST_RAM0_BASE, 256 * MIB)], 40),
        [(0x5000_0000, 0xb000_0000), (0x2_0000_0000, 0xfe_0000_0000)]
    );
    // RAM in both banks: each region starts above that bank's RAM.
    assert_eq!(
        extended_regions(&[(GUEST_RAM0_BASE, 3 * GIB), (GUEST_RAM1_BASE, GIB)], 40),
        [(0x2_4000_0000, 0xfe_0000_0000 - GIB)]
    );
    // The start is rounded up to 2 MiB.
    assert_eq!(extended_regions(&[(GUEST_RAM0_BASE, MIB)], 40)[0], (0x4020_0000, 0xbfe0_0000));
    // Less than 64 MiB left in a bank: no region there; exactly 64 MiB: one.
    let ram = [(GUEST_RAM0_BASE, 3 * GIB - 63 * MIB)];
    assert_eq!(extended_regions(&ram, 40), [(GUEST_RAM1_BASE, 0xfe_0000_0000)]);
    let ram = [(GUEST_RAM0_BASE, 3 * GIB - 64 * MIB)];
    assert_eq!(extended_regions(&ram, 40)[0], (0x1_0000_0000 - 64 * MIB, 64 * MIB));
    // The address limit cuts GUEST_RAM1 (36 bits: up to 64 GiB) or leaves it out (33 bits).
    let ram = [(GUEST_RAM0_BASE, 256 * MIB)];
    assert_eq!(extended_regions(&ram, 36)[1], (GUEST_RAM1_BASE, 56 * GIB));
    assert_eq!(extended_regions(&ram, 33), [(0x5000_0000, 0xb000_0000)]);
    assert_eq!(extended_regions(&ram, 32), [(0x5000_0000, 0xb000_0000)]);
    // 64 bits: the windows' own ends.
    assert_eq!(extended_regions(&ram, 64), extended_regions(&ram, 40));
}

#[test]
fn extended_regions_are_aligned_large_and_clear_of_ram() {
    for memory_mib in [1, 2, 3, 100, 255, 256, 1000, 2047, 3008, 3009, 3072] {
        let ram = [(GUEST_RAM0_BASE, memory_mib * MIB)];
        for bits in 32..=64 {
            for (base, size) in extended_regions(&ram, bits) {
                assert_eq!(base % (2 * MIB), 0);
                assert_eq!(size % (2 * MIB), 0);
                assert!(size >= 64 * MIB);
                assert!(!overlaps((base, size), ram[0]));
                assert!(bits == 64 || base + size <= 1 << bits);
                let inside = GUEST_RAM_BANK_BASES
                    .iter()
                    .zip(GUEST_RAM_BANK_SIZES)
                    .any(|(&window, window_size)| contains((window, window_size), (base, size)));
                assert!(inside, "{base:#x}+{size:#x}");
            }
        }
    }
}

#[test]
fn dtc_accepts_the_tree() {
    if std::process::Command::new("dtc").arg("--version").output().is_err() {
        eprintln!("note: dtc not installed; skipping the dtc cross-check");
        return;
    }
    let ram = [(GUEST_RAM0_BASE, 512 * MIB), (GUEST_RAM1_BASE, 1024 * MIB)];
    let spec = GuestDtbSpec {
        initrd: Some((GUEST_RAM0_BASE + 64 * MIB, MIB)),
        clock_frequency: Some(62_500_000),
        console_uart: Some((GUEST_PL011_BASE, GUEST_VPL011_SPI)),
        ..spec(2, &ram)
    };
    let dtb = build(&spec).unwrap();
    let dts = dtc_decompile(&dtb);
    for expected in [
        "compatible = \"xen,xen-4.17\\0xen,xen\";",
        "reg = <0x00 0x38000000 0x00 0x1000000 0x00 0x60000000 0x00 0xa0000000 0x02 0x40000000 \
         0xfd 0xc0000000>;",
        "interrupts = <0x01 0x0f 0xf08>;",
        "reg = <0x00 0x3001000 0x00 0x10000 0x00 0x3020000 0x00 0x40000>;",
        "memory@200000000 {",
        "enable-method = \"psci\";",
        "stdout-path = \"/sbsa-uart@22000000\";",
    ] {
        assert!(dts.contains(expected), "missing {expected:?} in:\n{dts}");
    }
}

/// `dtc -I dtb -O dts`, string lists as `"a\0b"`. Fails on any warning but the one Xen's layout
/// always draws: `/hypervisor` has a `reg` but no unit address, because Linux looks the node up
/// by the exact name "hypervisor".
fn dtc_decompile(dtb: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dtc runs");
    child.stdin.take().unwrap().write_all(dtb).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "dtc failed: {stderr}");
    for line in stderr.lines() {
        assert!(
            line.contains("(unit_address_vs_reg): /hypervisor:"),
            "dtc warned: {line}\n{stderr}"
        );
    }
    String::from_utf8(output.stdout).unwrap().replace("\", \"", "\\0")
}

/// The blob's header and blocks as the Devicetree Specification v0.4, chapter 5, lays them out
/// (big-endian `u32`s), and each property name once in the strings block.
#[test]
fn header_and_blocks_are_well_formed() {
    let ram = [(GUEST_RAM0_BASE, 128 * MIB)];
    let dtb = build(&spec(4, &ram)).unwrap();
    let word = |index: usize| u32::from_be_bytes(dtb[index * 4..index * 4 + 4].try_into().unwrap());
    assert_eq!(word(0), 0xd00d_feed, "magic");
    assert_eq!(word(1) as usize, dtb.len(), "totalsize");
    let (off_struct, off_strings, off_reservations) = (word(2), word(3), word(4));
    assert_eq!((word(5), word(6)), (17, 16), "version, last compatible version");
    assert_eq!(word(7), 0, "boot_cpuid_phys is vCPU 0's affinity");
    let (size_strings, size_struct) = (word(8), word(9));
    assert_eq!(off_reservations, 40);
    assert_eq!(&dtb[40..56], &[0; 16], "no memory reservations");
    assert_eq!(off_struct, 56);
    assert_eq!(off_struct % 4, 0);
    assert_eq!(off_struct + size_struct, off_strings);
    assert_eq!((off_strings + size_strings) as usize, dtb.len());
    let strings = &dtb[off_strings as usize..];
    let names: Vec<&[u8]> = strings.strip_suffix(b"\0").unwrap().split(|&b| b == 0).collect();
    for (index, name) in names.iter().enumerate() {
        assert!(!names[..index].contains(name), "{} stored twice", String::from_utf8_lossy(name));
    }
}

#[test]
fn bad_specs_are_refused() {
    let ram = [(GUEST_RAM0_BASE, 128 * MIB)];
    let good = spec(2, &ram);
    let check = |spec: GuestDtbSpec<'_>, expected: DtbError| {
        assert_eq!(build(&spec), Err(expected), "{spec:x?}");
    };
    check(GuestDtbSpec { vcpus: 0, ..good }, DtbError::VcpuCount);
    check(GuestDtbSpec { vcpus: 129, gic_redistributors: 129, ..good }, DtbError::VcpuCount);
    check(GuestDtbSpec { gic_redistributors: 1, ..good }, DtbError::RedistributorCount);
    check(GuestDtbSpec { gic_redistributors: 129, ..good }, DtbError::RedistributorCount);

    check(GuestDtbSpec { ram: &[], ..good }, DtbError::Ram);
    check(GuestDtbSpec { ram: &[(GUEST_RAM0_BASE, 0)], ..good }, DtbError::Ram);
    check(GuestDtbSpec { ram: &[(0x1000_0000, MIB)], ..good }, DtbError::Ram);
    check(GuestDtbSpec { ram: &[(GUEST_RAM0_BASE, 4 << 30)], ..good }, DtbError::Ram);
    check(GuestDtbSpec { ram: &[(u64::MAX - 0xfff, 0x2000)], ..good }, DtbError::Ram);
    let overlapping = [(GUEST_RAM0_BASE, 2 * MIB), (GUEST_RAM0_BASE + MIB, MIB)];
    check(GuestDtbSpec { ram: &overlapping, ..good }, DtbError::Ram);

    check(GuestDtbSpec { initrd: Some((GUEST_RAM0_BASE, 0)), ..good }, DtbError::Initrd);
    let beyond = (GUEST_RAM0_BASE + 127 * MIB, 2 * MIB);
    check(GuestDtbSpec { initrd: Some(beyond), ..good }, DtbError::Initrd);
    check(GuestDtbSpec { initrd: Some((u64::MAX, 2)), ..good }, DtbError::Initrd);

    check(GuestDtbSpec { bootargs: "a\0b", ..good }, DtbError::Bootargs);

    check(GuestDtbSpec { address_bits: 31, ..good }, DtbError::AddressBits);
    check(GuestDtbSpec { address_bits: 65, ..good }, DtbError::AddressBits);
    let high = [(GUEST_RAM1_BASE, MIB)];
    check(GuestDtbSpec { ram: &high, address_bits: 33, ..good }, DtbError::AddressBits);
    assert!(build(&GuestDtbSpec { ram: &high, address_bits: 34, ..good }).is_ok());

    let uart = |base, spi| GuestDtbSpec { console_uart: Some((base, spi)), ..good };
    check(uart(GUEST_PL011_BASE + 4, GUEST_VPL011_SPI), DtbError::ConsoleUart);
    check(uart(GUEST_RAM0_BASE, GUEST_VPL011_SPI), DtbError::ConsoleUart);
    check(uart(GUEST_GNTTAB_BASE, GUEST_VPL011_SPI), DtbError::ConsoleUart);
    check(uart(!0xfff, GUEST_VPL011_SPI), DtbError::ConsoleUart);
    check(uart(GUEST_PL011_BASE, 31), DtbError::ConsoleUart);
    check(uart(GUEST_PL011_BASE, 1020), DtbError::ConsoleUart);
}

#[test]
fn virtio_mmio_devices_are_written_as_libxl_writes_them() {
    let ram = [(GUEST_RAM0_BASE, 128 * MIB)];
    let devices = [virtio_mmio_slot(0).unwrap(), virtio_mmio_slot(1).unwrap()];
    assert_eq!(devices, [(0x0200_0000, 33), (0x0200_0200, 34)]);
    let spec = GuestDtbSpec { virtio_mmio: &devices, ..spec(1, &ram) };
    let dtb = build(&spec).unwrap();
    check_platform(&dtb, 1, &ram);
    let fdt = fdt::Fdt::new(&dtb).unwrap();
    for (index, &(base, spi)) in devices.iter().enumerate() {
        let node = fdt.find_node(&format!("/virtio@{base:x}")).expect("a virtio node");
        let names: Vec<&str> = node.properties().map(|property| property.name).collect();
        assert_eq!(names, ["compatible", "reg", "interrupts", "dma-coherent"], "device {index}");
        assert_eq!(strlist(node, "compatible"), ["virtio,mmio"]);
        assert_eq!(regs(node), [(base, 0x200)]);
        // SPI number (INTID - 32), all CPUs, rising edge (libxl's DT_IRQ_TYPE_EDGE_RISING).
        assert_eq!(prop_cells(node, "interrupts"), [0, spi - 32, 0xf01]);
        assert_eq!(node.property("dma-coherent").unwrap().value, [0u8; 0]);
    }
    let virtio = fdt.all_nodes().filter(|node| node.name.starts_with("virtio@")).count();
    assert_eq!(virtio, 2);
    // libxl's grant-based virtio is not offered: no `xen,grant-dma` node, no `iommus`.
    assert!(!fdt.all_nodes().any(|node| node.name.starts_with("xen_iommu")));
}

#[test]
fn virtio_mmio_slots_end_where_libxl_runs_out() {
    let last = GUEST_VIRTIO_MMIO_SPI_LAST - GUEST_VIRTIO_MMIO_SPI_FIRST;
    assert_eq!(last, 10);
    assert_eq!(virtio_mmio_slot(last), Some((0x0200_1400, 43)));
    assert_eq!(virtio_mmio_slot(last + 1), None);
    assert_eq!(virtio_mmio_slot(u32::MAX), None);
}

#[test]
fn bad_virtio_mmio_devices_are_refused() {
    let ram = [(GUEST_RAM0_BASE, 128 * MIB)];
    let good = spec(1, &ram);
    let check = |devices: &[(u64, u32)]| {
        let spec = GuestDtbSpec { virtio_mmio: devices, ..good };
        assert_eq!(build(&spec), Err(DtbError::VirtioMmio), "{devices:x?}");
    };
    let base = GUEST_VIRTIO_MMIO_BASE;
    check(&[(base + 0x100, 33)]); // not a slot
    check(&[(base - 0x200, 33)]); // below the window
    check(&[(base + GUEST_VIRTIO_MMIO_SIZE, 33)]); // above it
    check(&[(base, 32)]); // the vpl011's SPI
    check(&[(base, 44)]); // past GUEST_VIRTIO_MMIO_SPI_LAST
    check(&[(base, 33), (base, 34)]); // one window twice
    check(&[(base, 33), (base + 0x200, 33)]); // one SPI twice
    assert!(build(&GuestDtbSpec { virtio_mmio: &[(base + 0x200, 43)], ..good }).is_ok());
}
