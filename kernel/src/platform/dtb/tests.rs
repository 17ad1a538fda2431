//! Host tests of `platform`.

use super::*;

const SMP1: &[u8] = include_bytes!("../../../tests/data/qemu-virt-gicv3-smp1.dtb");
const SMP2: &[u8] = include_bytes!("../../../tests/data/qemu-virt-gicv3-smp2.dtb");
const SMP4: &[u8] = include_bytes!("../../../tests/data/qemu-virt-gicv3-smp4.dtb");
/// Built from `chosen-initrd.dts` next to it; see that file for what it covers.
const CHOSEN: &[u8] = include_bytes!("../../../tests/data/chosen-initrd.dtb");

const GIB: u64 = 1 << 30;

fn region(start: u64, len: u64) -> Region {
    Region::from_base_size(start, len).unwrap()
}

/// `dtb` with every occurrence of `from` replaced by `to` (same length), at least once.
fn patched(dtb: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = dtb.to_vec();
    let mut hits = 0;
    for at in 0..=out.len() - from.len() {
        if &out[at..at + from.len()] == from {
            out[at..at + from.len()].copy_from_slice(to);
            hits += 1;
        }
    }
    assert!(hits > 0, "{:?} not found", String::from_utf8_lossy(from));
    out
}

fn cells_bytes(cells: &[u32]) -> Vec<u8> {
    cells.iter().flat_map(|cell| cell.to_be_bytes()).collect()
}

#[test]
fn qemu_virt_recordings() {
    for (dtb, count) in [(SMP1, 1), (SMP2, 2), (SMP4, 4)] {
        let platform = Platform::parse(dtb, 0x4000_0000).unwrap();
        assert_eq!(platform.dtb, region(0x4000_0000, dtb.len() as u64));
        assert_eq!(platform.ram.as_slice(), &[region(0x4000_0000, GIB)]);
        assert!(platform.reserved.is_empty());
        assert_eq!(platform.gic.dist, region(0x0800_0000, 0x1_0000));
        assert_eq!(platform.gic.redist.as_slice(), &[region(0x080A_0000, 0xF6_0000)]);
        assert_eq!(platform.gic.redist_stride, None);
        let timer = Timer { secure_phys: 29, nonsecure_phys: 30, virt: 27, hyp: 26 };
        assert_eq!(platform.timer, timer);
        assert_eq!(platform.psci, Some(Psci { method: PsciMethod::Smc, cpu_on: 0xC400_0003 }));
        assert_eq!(platform.cpus.len(), count);
        assert_eq!(platform.cpus_skipped, 0);
        for (index, cpu) in platform.cpus.iter().enumerate() {
            assert_eq!(cpu.mpidr, index as u64);
            // QEMU names no enable-method when there is only the boot CPU.
            let method = if count == 1 { EnableMethod::None } else { EnableMethod::Psci };
            assert_eq!(cpu.enable_method, method);
        }
        assert_eq!(platform.bootargs, None);
        assert_eq!(platform.initrd, None);
        assert_eq!(platform.stdout_path, Some("/pl011@9000000"));
        let uart = region(0x0900_0000, 0x1000);
        assert_eq!(platform.uart(None), Ok(uart));
        assert_eq!(platform.uart(Some("/pl011@9000000")), Ok(uart));
        assert_eq!(platform.uart(Some("/pl011@9000000:115200n8")), Ok(uart));
        assert_eq!(platform.uart(Some("serial0")), Err(PlatformError::UartNotFound));
        assert_eq!(platform.uart(Some("/pl011@9000001")), Err(PlatformError::UartNotFound));
        assert_eq!(platform.rtc(), Some(region(0x901_0000, 0x1000)));
        assert_eq!(platform.uart(Some("/intc@8000000")), Err(PlatformError::NotPl011));
        assert_eq!(platform.uart(Some("")), Err(PlatformError::UartNotFound));
        // QEMU virt's PL011 is SPI 1: `interrupts = <0 1 4>`.
        assert_eq!(platform.uart_interrupt(None), Some(33));
        assert_eq!(platform.uart_interrupt(Some("/pl011@9000001")), None);
    }
}

#[test]
fn a_buffer_longer_than_the_dtb_is_cut_to_totalsize() {
    let mut buffer = SMP2.to_vec();
    buffer.resize(SMP2.len() + 4096, 0xff);
    let platform = Platform::parse(&buffer, 0x4800_0000).unwrap();
    assert_eq!(platform.dtb, region(0x4800_0000, SMP2.len() as u64));
    assert_eq!(
        Platform::parse(SMP2, u64::MAX - 100).unwrap_err(),
        PlatformError::BadDtb { reason: "it would end past the top of the address space" }
    );
}

#[test]
fn chosen_fixture() {
    let platform = Platform::parse(CHOSEN, 0x8100_0000).unwrap();
    assert_eq!(platform.bootargs, Some("loglvl=debug sched=null"));
    assert_eq!(platform.initrd, Some(Region::new(0x8800_0000, 0x8812_3456)));
    assert_eq!(platform.stdout_path, Some("serial0"));
    assert_eq!(
        platform.ram.as_slice(),
        &[region(0x8000_0000, GIB / 2), region(0xC000_0000, GIB / 4)]
    );
    // /memreserve/ first, then /reserved-memory, whose children use two cells in a one-cell root.
    assert_eq!(
        platform.reserved.as_slice(),
        &[region(0x8000_0000, 0x1_0000), region(0x9E00_0000, 0x100_0000)]
    );
    assert_eq!(platform.gic.dist, region(0x2F00_0000, 0x1_0000));
    assert_eq!(
        platform.gic.redist.as_slice(),
        &[region(0x2F10_0000, 0x10_0000), region(0x2F30_0000, 0x8_0000)]
    );
    assert_eq!(platform.gic.redist_stride, Some(0x4_0000));
    let timer = Timer { secure_phys: 29, nonsecure_phys: 30, virt: 27, hyp: 26 };
    assert_eq!(platform.timer, timer);
    assert_eq!(platform.psci, Some(Psci { method: PsciMethod::Hvc, cpu_on: 0x95C1_BA5F }));
    let spin = EnableMethod::SpinTable { release_addr: 0x8000_FFF8 };
    let first = [
        Cpu { mpidr: 0, enable_method: spin },
        Cpu { mpidr: 0x1_0000_0000, enable_method: spin },
        Cpu { mpidr: 0x101, enable_method: EnableMethod::Psci },
    ];
    assert_eq!(&platform.cpus.as_slice()[..3], &first);
    // 18 CPUs: the first MAX_CPUS are kept in DTB order, the rest counted.
    assert_eq!(platform.cpus.len(), MAX_CPUS);
    assert_eq!(platform.cpus_skipped, 2);
    let rest: Vec<u64> = platform.cpus.iter().skip(3).map(|cpu| cpu.mpidr).collect();
    assert_eq!(rest, (0x200..0x20d).collect::<Vec<u64>>());
}

#[test]
fn uart_choice_follows_dtuart_then_stdout_path_then_the_first_pl011() {
    let platform = Platform::parse(CHOSEN, 0).unwrap();
    let serial0 = region(0x1C0A_0000, 0x1000);
    let serial1 = region(0x1C09_0000, 0x1000);
    assert_eq!(platform.uart(None), Ok(serial0), "stdout-path is serial0:115200n8");
    assert_eq!(platform.uart(Some("serial1")), Ok(serial1));
    assert_eq!(platform.uart(Some("serial1:9600")), Ok(serial1));
    assert_eq!(platform.uart(Some("/soc/uart@1c090000")), Ok(serial1));
    assert_eq!(platform.uart(Some("/soc/uart@1c0b0000")), Err(PlatformError::NotPl011));
    assert_eq!(platform.uart(Some("timer")), Err(PlatformError::NotPl011));
    assert_eq!(platform.uart(Some("serial9")), Err(PlatformError::UartNotFound));
    // An explicitly named disabled PL011 is honoured.
    assert_eq!(platform.uart(Some("/soc/uart@1c0c0000")).unwrap().start, 0x1C0C_0000);

    // Without stdout-path: the first enabled PL011.
    let unnamed = patched(CHOSEN, b"stdout-path\0", b"stdout-patx\0");
    let platform = Platform::parse(&unnamed, 0).unwrap();
    assert_eq!(platform.stdout_path, None);
    assert_eq!(platform.uart(None), Ok(serial1));

    // Without any enabled PL011.
    let none = patched(&unnamed, b"arm,pl011\0", b"arm,pl012\0");
    assert_eq!(Platform::parse(&none, 0).unwrap().uart(None), Err(PlatformError::NoUart));
}

#[test]
fn garbage_is_a_bad_dtb() {
    let bad = |dtb: &[u8]| matches!(Platform::parse(dtb, 0), Err(PlatformError::BadDtb { .. }));
    assert!(bad(&[]));
    assert!(bad(b"this is not a device tree, only forty or more bytes of text"));
    assert!(bad(&[0xd0, 0x0d, 0xfe, 0xed]));
    assert!(bad(&SMP1[..100]));
    assert!(bad(&SMP1[..SMP1.len() - 1]));
    let mut noise = vec![0u8; 4096];
    noise[..4].copy_from_slice(&FDT_MAGIC.to_be_bytes());
    assert!(bad(&noise));
}

#[test]
fn header_checks() {
    let with_field = |index: usize, value: u32| {
        let mut dtb = SMP1.to_vec();
        dtb[index * 4..index * 4 + 4].copy_from_slice(&value.to_be_bytes());
        validate(&dtb).unwrap_err()
    };
    let reason = |error| match error {
        PlatformError::BadDtb { reason } => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        reason(with_field(1, 39)),
        "its totalsize is smaller than the header or larger than the buffer"
    );
    assert_eq!(reason(with_field(5, 16)), "it is not a version-17 compatible FDT");
    assert_eq!(reason(with_field(2, u32::MAX)), "a block lies outside totalsize");
    assert_eq!(reason(with_field(8, 1 << 20)), "a block lies outside totalsize");
    assert_eq!(
        reason(with_field(4, SMP1.len() as u32 - 8)),
        "the memory reservation block runs past totalsize"
    );
    // A structure block cut short loses its END token.
    let size = be32(SMP1, 36).unwrap();
    assert_eq!(reason(with_field(9, size - 4)), "the structure block ends before its END token");
}

#[test]
fn structure_checks() {
    let structure = |tokens: &[u32], strings: &[u8]| check_structure(&cells_bytes(tokens), strings);
    let root = [FDT_BEGIN_NODE, 0];
    assert_eq!(structure(&[&root[..], &[FDT_END_NODE, FDT_END]].concat(), b""), Ok(()));
    // "#size-cells" is at offset 0 of these strings.
    let strings = b"#size-cells\0a/b\0";
    let prop = |length: u32, name: u32| [FDT_PROP, length, name];
    let tree = [&root[..], &prop(4, 0), &[2], &[FDT_END_NODE, FDT_END]].concat();
    assert_eq!(structure(&tree, strings), Ok(()));
    let cases: [(Vec<u32>, &str); 8] = [
        ([&root[..], &[FDT_NOP, FDT_END_NODE, FDT_END]].concat(), "it holds NOP tokens"),
        ([&root[..], &prop(8, 0), &[0, 2], &[FDT_END_NODE, FDT_END]].concat(), "is not one cell"),
        ([&root[..], &prop(0, 12), &[FDT_END_NODE, FDT_END]].concat(), "contains '/'"),
        ([&root[..], &prop(0, 99), &[FDT_END_NODE, FDT_END]].concat(), "not terminated"),
        ([&root[..], &prop(400, 0), &[FDT_END_NODE, FDT_END]].concat(), "runs past"),
        ([&root[..], &[FDT_END]].concat(), "before the root node is closed"),
        (
            [&root[..], &[FDT_END_NODE], &root[..], &[FDT_END_NODE, FDT_END]].concat(),
            "exactly one root",
        ),
        (
            [&root[..], &root[..], &[FDT_END_NODE], &prop(4, 0), &[2, FDT_END_NODE, FDT_END]]
                .concat(),
            "follows a child node",
        ),
    ];
    for (tokens, expected) in cases {
        let error = structure(&tokens, strings).unwrap_err();
        assert!(error.contains(expected), "{error:?} should mention {expected:?}");
    }
    assert!(structure(&[FDT_END_NODE], b"").unwrap_err().contains("closes no node"));
    assert!(structure(&[7], b"").unwrap_err().contains("unknown token"));
    let deep: Vec<u32> = std::iter::repeat_n([FDT_BEGIN_NODE, 0], 33).flatten().collect();
    assert!(structure(&deep, b"").unwrap_err().contains("32 deep"));
}

#[test]
fn missing_parts_are_named() {
    let no_gic = patched(SMP2, b"arm,gic-v3\0", b"arm,gic-v9\0");
    assert_eq!(Platform::parse(&no_gic, 0).unwrap_err(), PlatformError::NoGicV3);
    let no_timer = patched(SMP2, b"arm,armv8-timer", b"arm,armv9-timer");
    let no_timer = patched(&no_timer, b"arm,armv7-timer", b"arm,armv9-timer");
    assert_eq!(Platform::parse(&no_timer, 0).unwrap_err(), PlatformError::NoTimer);
    let no_memory = patched(SMP2, b"memory\0", b"memorx\0");
    assert_eq!(Platform::parse(&no_memory, 0).unwrap_err(), PlatformError::NoMemory);
    let no_cpus = patched(SMP2, b"cpu\0", b"cpx\0");
    assert_eq!(Platform::parse(&no_cpus, 0).unwrap_err(), PlatformError::NoCpus);
    let no_psci = patched(SMP2, b"arm,psci", b"arm,pscx");
    assert_eq!(Platform::parse(&no_psci, 0).unwrap().psci, None);
}

#[test]
fn malformed_parts_are_refused() {
    // The secure timer as an SPI.
    let spi = patched(SMP2, &cells_bytes(&[1, 13, 4, 1, 14]), &cells_bytes(&[0, 13, 4, 1, 14]));
    assert_eq!(
        Platform::parse(&spi, 0).unwrap_err(),
        PlatformError::BadTimer { reason: "a timer interrupt is not a PPI" }
    );
    let two_redist = patched(SMP2, b"#redistributor-regions\0", b"#redistributor-regionx\0");
    assert!(Platform::parse(&two_redist, 0).is_ok(), "#redistributor-regions defaults to 1");
    let psci = patched(SMP2, b"smc\0", b"svc\0");
    assert_eq!(
        Platform::parse(&psci, 0).unwrap_err(),
        PlatformError::BadProperty { node: "psci", property: "method" }
    );
    let old_psci = patched(CHOSEN, b"cpu_on\0", b"cpu_ox\0");
    assert_eq!(
        Platform::parse(&old_psci, 0).unwrap_err(),
        PlatformError::BadProperty { node: "psci", property: "cpu_on" }
    );
    let spin = patched(CHOSEN, b"cpu-release-addr\0", b"cpu-release-adds\0");
    assert_eq!(
        Platform::parse(&spin, 0).unwrap_err(),
        PlatformError::BadProperty { node: "/cpus/cpu", property: "cpu-release-addr" }
    );
}

#[test]
fn initrd_errors() {
    let one_end = patched(CHOSEN, b"linux,initrd-end\0", b"linux,initrd-enx\0");
    assert_eq!(
        Platform::parse(&one_end, 0).unwrap_err(),
        PlatformError::BadInitrd {
            reason: "only one of linux,initrd-start and linux,initrd-end is present"
        }
    );
    let backwards = patched(CHOSEN, &[0x88, 0x12, 0x34, 0x56], &[0x87, 0x12, 0x34, 0x56]);
    assert_eq!(
        Platform::parse(&backwards, 0).unwrap_err(),
        PlatformError::BadInitrd { reason: "linux,initrd-end lies before linux,initrd-start" }
    );
    let empty = patched(CHOSEN, &[0x88, 0x12, 0x34, 0x56], &[0x88, 0x00, 0x00, 0x00]);
    assert_eq!(Platform::parse(&empty, 0).unwrap().initrd, None);
}

/// xorshift64*: deterministic noise for the mutation test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

/// Corrupted DTBs must be refused or parsed, never make the parser panic or loop.
#[test]
fn mutated_dtbs_never_panic() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut parsed = 0;
    for round in 0..4000 {
        let source = [SMP1, SMP2, SMP4, CHOSEN][round % 4];
        let mut dtb = source.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(dtb.len());
            dtb[at] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => dtb[at] ^ (1 << rng.below(8)),
                _ => rng.below(256) as u8,
            };
        }
        if rng.below(8) == 0 {
            dtb.truncate(rng.below(dtb.len()));
        }
        if let Ok(platform) = Platform::parse(&dtb, 0x4000_0000) {
            parsed += 1;
            for name in [None, Some("serial0"), Some("/pl011@9000000"), Some("timer")] {
                let _ = platform.uart(name);
            }
        }
    }
    assert!(parsed > 100, "only {parsed} mutants parsed: the test is not exercising the parser");
}
