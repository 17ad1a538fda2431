//! Host tests of the DTB writer: the output is read back with the `fdt` crate and, when it is
//! installed, with `dtc`.

use super::*;

fn cells(value: &[u8]) -> Vec<u32> {
    value.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect()
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// A small tree using every kind of property, with reservations and a boot CPU.
fn sample(buffer: &mut [u8]) -> Result<usize, FdtError> {
    let mut writer = FdtWriter::new(buffer, &[(0x8000_0000, 0x1000), (0x1_0000_0000, 0x20)], 3)?;
    writer.begin_node("")?;
    writer.property_u32("#address-cells", 2)?;
    writer.property_u32("#size-cells", 2)?;
    writer.property_strlist("compatible", &["vendor,board", "vendor,soc"])?;
    writer.begin_node("chosen")?;
    writer.property_str("bootargs", "console=hvc0 root=/dev/xvda")?;
    writer.property_u64("linux,initrd-start", 0x4800_0000)?;
    writer.end_node()?;
    writer.begin_node("memory@40000000")?;
    writer.property_str("device_type", "memory")?;
    writer.property_cells("reg", &[0, 0x4000_0000, 0, 0x1000_0000])?;
    writer.end_node()?;
    writer.begin_node("interrupt-controller@3001000")?;
    writer.property_strlist("compatible", &["arm,gic-v3"])?;
    writer.property_u32("#interrupt-cells", 3)?;
    writer.property_u32("#address-cells", 0)?;
    writer.property("interrupt-controller", &[])?;
    writer.property_cells("reg", &[0, 0x300_1000, 0, 0x1_0000])?;
    writer.property("odd-length", &[1, 2, 3, 4, 5])?;
    writer.property_u32("phandle", 1)?;
    writer.begin_node("child")?;
    writer.end_node()?;
    writer.end_node()?;
    writer.end_node()?;
    writer.finish()
}

#[test]
fn header_and_blocks_are_laid_out_as_dtspec_says() {
    let mut buffer = [0xaau8; 1024];
    let size = sample(&mut buffer).unwrap();
    let dtb = &buffer[..size];
    assert_eq!(be_u32(dtb, 0), FDT_MAGIC);
    assert_eq!(be_u32(dtb, 4) as usize, size);
    let off_struct = be_u32(dtb, 8) as usize;
    let off_strings = be_u32(dtb, 12) as usize;
    assert_eq!(be_u32(dtb, 16), 40, "off_mem_rsvmap");
    assert_eq!(be_u32(dtb, 20), 17);
    assert_eq!(be_u32(dtb, 24), 16);
    assert_eq!(be_u32(dtb, 28), 3, "boot_cpuid_phys");
    let size_strings = be_u32(dtb, 32) as usize;
    let size_struct = be_u32(dtb, 36) as usize;
    assert_eq!(off_struct, 40 + 3 * 16);
    assert_eq!(off_struct % 4, 0);
    assert_eq!(off_strings, off_struct + size_struct);
    assert_eq!(off_strings + size_strings, size);
    assert_eq!(be_u32(dtb, off_strings - 4), 9, "FDT_END closes the structure block");
    // Each name once: 11 distinct names, though "compatible", "reg" and "#address-cells" are
    // used twice.
    let strings = &dtb[off_strings..];
    assert_eq!(strings.iter().filter(|&&b| b == 0).count(), 11);
    assert_eq!(strings.windows(11).filter(|w| w == b"compatible\0").count(), 1);
}

#[test]
fn fdt_crate_reads_back_every_property() {
    let mut buffer = [0u8; 1024];
    let size = sample(&mut buffer).unwrap();
    let fdt = fdt::Fdt::new(&buffer[..size]).unwrap();
    assert_eq!(fdt.total_size(), size);
    let reservations: Vec<_> =
        fdt.memory_reservations().map(|r| (r.address() as u64, r.size())).collect();
    assert_eq!(reservations, [(0x8000_0000, 0x1000), (0x1_0000_0000, 0x20)]);

    let root = fdt.root();
    assert_eq!(root.compatible().all().collect::<Vec<_>>(), ["vendor,board", "vendor,soc"]);
    assert_eq!(root.cell_sizes().address_cells, 2);
    assert_eq!(fdt.chosen().bootargs(), Some("console=hvc0 root=/dev/xvda"));
    let chosen = fdt.find_node("/chosen").unwrap();
    assert_eq!(chosen.property("linux,initrd-start").unwrap().value, 0x4800_0000u64.to_be_bytes());

    let memory = fdt.find_node("/memory@40000000").unwrap();
    assert_eq!(memory.property("device_type").unwrap().as_str(), Some("memory"));
    let regions: Vec<_> =
        memory.reg().unwrap().map(|r| (r.starting_address as u64, r.size.unwrap())).collect();
    assert_eq!(regions, [(0x4000_0000, 0x1000_0000)]);

    let gic = fdt.find_node("/interrupt-controller@3001000").unwrap();
    assert_eq!(gic.property("interrupt-controller").unwrap().value, b"");
    assert_eq!(gic.property("odd-length").unwrap().value, [1, 2, 3, 4, 5]);
    assert_eq!(cells(gic.property("phandle").unwrap().value), [1]);
    assert_eq!(fdt.find_phandle(1).unwrap().name, "interrupt-controller@3001000");
    assert_eq!(gic.children().map(|c| c.name).collect::<Vec<_>>(), ["child"]);
    let names: Vec<_> = fdt.all_nodes().map(|n| n.name).collect();
    assert_eq!(names, ["/", "chosen", "memory@40000000", "interrupt-controller@3001000", "child"]);
}

#[test]
fn dtc_decompiles_the_output() {
    if std::process::Command::new("dtc").arg("--version").output().is_err() {
        eprintln!("note: dtc not installed; skipping the dtc cross-check");
        return;
    }
    let mut buffer = [0u8; 1024];
    let size = sample(&mut buffer).unwrap();
    let dts = dtc_decompile(&buffer[..size]);
    for expected in [
        "/memreserve/\t0x0000000080000000 0x0000000000001000;",
        "compatible = \"vendor,board\\0vendor,soc\";",
        "bootargs = \"console=hvc0 root=/dev/xvda\";",
        "linux,initrd-start = <0x00 0x48000000>;",
        "reg = <0x00 0x40000000 0x00 0x10000000>;",
        "interrupt-controller;",
        "odd-length = [01 02 03 04 05];",
        "child {",
    ] {
        assert!(dts.contains(expected), "missing {expected:?} in:\n{dts}");
    }
}

/// `dtc -I dtb -O dts` of `dtb`, string lists written `"a\0b"` whichever way this dtc prints
/// them; fails the test if dtc rejects the input or warns about it.
pub(crate) fn dtc_decompile(dtb: &[u8]) -> String {
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
    assert!(stderr.trim().is_empty(), "dtc warned: {stderr}");
    String::from_utf8(output.stdout).unwrap().replace("\", \"", "\\0")
}

#[test]
fn every_too_small_buffer_is_an_error() {
    let mut buffer = [0u8; 1024];
    let size = sample(&mut buffer).unwrap();
    for length in 0..size {
        let mut small = vec![0u8; length];
        assert_eq!(sample(&mut small), Err(FdtError::BufferTooSmall), "length {length}");
    }
    let mut exact = vec![0u8; size];
    assert_eq!(sample(&mut exact), Ok(size));
    assert_eq!(&exact[..], &buffer[..size]);
}

#[test]
fn a_failed_call_leaves_the_tree_usable() {
    let mut buffer = [0u8; 128];
    let mut writer = FdtWriter::new(&mut buffer, &[], 0).unwrap();
    writer.begin_node("").unwrap();
    assert_eq!(writer.property("big", &[0; 200]), Err(FdtError::BufferTooSmall));
    assert_eq!(writer.property_str("bad", "a\0b"), Err(FdtError::InvalidString));
    writer.property_u32("small", 7).unwrap();
    writer.end_node().unwrap();
    let size = writer.finish().unwrap();
    let fdt = fdt::Fdt::new(&buffer[..size]).unwrap();
    let names: Vec<_> = fdt.root().properties().map(|p| p.name).collect();
    assert_eq!(names, ["small"]);
    assert_eq!(fdt.strings().collect::<Vec<_>>(), ["small"]);
}

#[test]
fn nodes_must_balance() {
    let mut buffer = [0u8; 256];
    let mut writer = FdtWriter::new(&mut buffer, &[], 0).unwrap();
    assert_eq!(writer.end_node(), Err(FdtError::UnbalancedNodes));
    assert_eq!(writer.property_u32("a", 1), Err(FdtError::UnbalancedNodes));
    assert_eq!(writer.begin_node("notroot"), Err(FdtError::InvalidName));
    writer.begin_node("").unwrap();
    writer.begin_node("child").unwrap();
    writer.end_node().unwrap();
    writer.end_node().unwrap();
    assert_eq!(writer.begin_node(""), Err(FdtError::UnbalancedNodes), "second root");
    assert_eq!(writer.end_node(), Err(FdtError::UnbalancedNodes));

    let mut buffer = [0u8; 256];
    let mut writer = FdtWriter::new(&mut buffer, &[], 0).unwrap();
    writer.begin_node("").unwrap();
    writer.begin_node("open").unwrap();
    writer.end_node().unwrap();
    let mut buffer2 = [0u8; 256];
    assert_eq!(writer.finish(), Err(FdtError::UnbalancedNodes));
    let writer = FdtWriter::new(&mut buffer2, &[], 0).unwrap();
    assert_eq!(writer.finish(), Err(FdtError::UnbalancedNodes), "no root");
}

#[test]
fn names_are_checked() {
    let mut buffer = [0u8; 256];
    let mut writer = FdtWriter::new(&mut buffer, &[], 0).unwrap();
    writer.begin_node("").unwrap();
    assert_eq!(writer.begin_node(""), Err(FdtError::InvalidName));
    assert_eq!(writer.begin_node("@10"), Err(FdtError::InvalidName));
    assert_eq!(writer.begin_node("a\0b"), Err(FdtError::InvalidName));
    assert_eq!(writer.begin_node(&"n".repeat(32)), Err(FdtError::InvalidName));
    assert_eq!(writer.property_u32("", 1), Err(FdtError::InvalidName));
    assert_eq!(writer.property_u32(&"p".repeat(32), 1), Err(FdtError::InvalidName));
    writer.property_u32(&"p".repeat(31), 1).unwrap();
    writer.begin_node(&format!("{}@ffffffffffffffff", "n".repeat(31))).unwrap();
    writer.end_node().unwrap();
    writer.end_node().unwrap();
    writer.finish().unwrap();
}

#[test]
fn properties_come_before_children() {
    let mut buffer = [0u8; 256];
    let mut writer = FdtWriter::new(&mut buffer, &[], 0).unwrap();
    writer.begin_node("").unwrap();
    writer.begin_node("a").unwrap();
    writer.property_u32("x", 1).unwrap();
    writer.end_node().unwrap();
    assert_eq!(writer.property_u32("late", 1), Err(FdtError::PropertyAfterChild));
    writer.begin_node("b").unwrap();
    writer.property_u32("y", 2).unwrap();
    writer.end_node().unwrap();
    writer.end_node().unwrap();
    writer.finish().unwrap();
}

#[test]
fn distinct_names_are_bounded() {
    let mut buffer = vec![0u8; 8192];
    let mut writer = FdtWriter::new(&mut buffer, &[], 0).unwrap();
    writer.begin_node("").unwrap();
    for index in 0..MAX_PROPERTY_NAMES {
        writer.property_u32(&format!("p{index}"), index as u32).unwrap();
    }
    assert_eq!(writer.property_u32("one-too-many", 0), Err(FdtError::TooManyStrings));
    // Names already stored are still fine.
    writer.begin_node("again").unwrap();
    for index in 0..MAX_PROPERTY_NAMES {
        writer.property_u32(&format!("p{index}"), 1000 + index as u32).unwrap();
    }
    writer.end_node().unwrap();
    writer.end_node().unwrap();
    let size = writer.finish().unwrap();
    let fdt = fdt::Fdt::new(&buffer[..size]).unwrap();
    assert_eq!(fdt.strings().count(), MAX_PROPERTY_NAMES);
    let again = fdt.find_node("/again").unwrap();
    for index in 0..MAX_PROPERTY_NAMES {
        let value = again.property(&format!("p{index}")).unwrap().value;
        assert_eq!(cells(value), [1000 + index as u32]);
    }
}

#[test]
fn reservations_that_do_not_fit_are_an_error() {
    let mut buffer = [0u8; 40 + 16];
    assert!(FdtWriter::new(&mut buffer, &[], 0).is_ok());
    assert!(matches!(FdtWriter::new(&mut buffer, &[(1, 1)], 0), Err(FdtError::BufferTooSmall)));
}
