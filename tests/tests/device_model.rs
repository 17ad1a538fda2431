//! Device models through the core's IOREQ servers (issue 18): `dm_op`'s and
//! `XENMEM_acquire_resource`'s answers in Xen's order, dm_restrict (a domain holding only
//! `dm:<target>` reaches nothing else), and a target's MMIO accesses forwarded to a device model
//! and answered, every access size and a sign-extending load among them, with the device
//! model's interrupt taken.

use xenolith_tests::{expect_unordered, Boot};

#[test]
fn a_device_model_serves_its_targets_mmio_and_reaches_nothing_else() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/ioreq.toml").start();
    running.forbid("FAIL");
    running.forbid("panicked");
    running.forbid("crashing it");
    expect_unordered(
        &mut running,
        &[
            "emulator: no buffers -> Err(ENODATA) as expected",
            "emulator: three buffers -> Err(E2BIG) as expected",
            "emulator: on itself -> Err(EPERM) as expected",
            "emulator: op 21 -> Err(EOPNOTSUPP) as expected",
            "emulator: every dm_op on d2 -> EPERM: true",
            "emulator: PASS dm_restrict: nothing beyond its target",
            "emulator: info with gfns -> Err(EOPNOTSUPP) as expected",
            "emulator: map an overlapping range -> Err(EEXIST) as expected",
            "emulator: server 0 ready",
            "target: the device model is ready",
            "target: PASS every access answered by the device model; interrupt taken",
            "emulator: PASS served 1011 requests; the target reports 0x3e8",
        ],
    );
}

/// The device-model domain at start: a configuration without `xenolith.dm.ram` is refused
/// naming that key; a good one gets its 1,536-byte ramdisk copied into the preserved region
/// (the DTB's initrd range, read by the runtime's `StartInfo`).
#[test]
fn a_device_model_refuses_a_bad_configuration_and_copies_its_disk() {
    let mut running = Boot::new(1, "").manifest("tests/manifests/dm-start.toml").start();
    expect_unordered(
        &mut running,
        &[
            "device-model: FAIL bad configuration: `xenolith.dm.ram` is missing from the bootargs",
            "device-model: disk of 1536 bytes copied from the ramdisk",
        ],
    );
}
