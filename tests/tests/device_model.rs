//! The device-model domain (issue 18) at start: its configuration from its bootargs, its disk
//! image from its ramdisk into its preserved region.

use xenolith_tests::{expect_unordered, Boot};

/// A configuration without `xenolith.dm.ram` is refused naming that key; a good one gets its
/// 1,536-byte ramdisk copied into the preserved region (the DTB's initrd range, read by the
/// runtime's `StartInfo`).
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
