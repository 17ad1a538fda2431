//! What the core refuses and how it stops: a writable+executable mapping, an EL2 fault (with the
//! register dump), a damaged boot bundle. Each ends with every CPU stopped and, because the test
//! asks for `on_panic=poweroff`, QEMU exiting cleanly.

use xenolith_tests::{expect_all, expect_power_off, test_image, Boot};

#[test]
fn writable_executable_mapping_is_refused() {
    let mut running = Boot::new(2, "test_wx_mapping on_panic=poweroff").start();
    running.allow("PANIC");
    running.forbid("EL2 MMU on");
    expect_all(
        &mut running,
        &[
            "test hook test_wx_mapping: mapped",
            "PANIC on CPU0: W^X check failed",
            "is writable and executable; refusing to continue",
            "powering off",
        ],
    );
    expect_power_off(&mut running);
}

#[test]
fn el2_data_abort_dumps_registers_and_stops_every_cpu() {
    let mut running = Boot::new(2, "test_fault=el2-data-abort on_panic=poweroff").start();
    running.allow("PANIC");
    running.forbid("Xenolith ready");
    expect_all(
        &mut running,
        &[
            "CPU1 online",
            "unexpected exception, vector 4 (synchronous EL2h) on CPU0",
            "EC=0x25 (data abort at the current EL)",
            "FAR_EL2=0x0000007fdead0000",
            "SPSR_EL2=",
            "x0 =",
            "x30=",
            "PANIC on CPU0: unexpected synchronous exception from EL2h",
            "CPU1 stopped",
            "powering off",
        ],
    );
    expect_power_off(&mut running);
}

#[test]
fn el2_undefined_instruction_dumps_registers() {
    let mut running = Boot::new(1, "test_fault=el2-undefined on_panic=poweroff").start();
    running.allow("PANIC");
    expect_all(
        &mut running,
        &["EC=0x00 (unknown reason)", "ISS=0x0", "PANIC on CPU0", "powering off"],
    );
    expect_power_off(&mut running);
}

#[test]
fn corrupted_boot_bundle_is_refused() {
    let image = test_image();
    let mut bytes = std::fs::read(&image.bundle).expect("reading the test bundle");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    let damaged = image.bundle.with_file_name("bundle-corrupt.bin");
    std::fs::write(&damaged, &bytes).expect("writing the damaged bundle");
    let mut boot = Boot::new(1, "on_panic=poweroff");
    boot.bundle = Some(damaged);
    let mut running = boot.start();
    running.allow("PANIC");
    running.forbid("Xenolith ready");
    expect_all(
        &mut running,
        &[
            "boot bundle refused: bundle payload checksum mismatch",
            "the image is corrupt",
            "powering off",
        ],
    );
    expect_power_off(&mut running);
}

#[test]
fn boot_module_that_is_not_a_bundle_is_refused() {
    let image = test_image();
    let bogus = image.bundle.with_file_name("not-a-bundle.bin");
    std::fs::write(&bogus, b"this is not a Xenolith boot bundle at all").expect("writing");
    let mut boot = Boot::new(1, "on_panic=poweroff");
    boot.bundle = Some(bogus);
    let mut running = boot.start();
    running.allow("PANIC");
    expect_all(&mut running, &["boot bundle refused: bad magic", "powering off"]);
    expect_power_off(&mut running);
}
