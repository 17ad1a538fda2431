//! Device models through the core's IOREQ servers (issue 18): `dm_op`'s and
//! `XENMEM_acquire_resource`'s answers in Xen's order, dm_restrict (a domain holding only
//! `dm:<target>` reaches nothing else), and a target's MMIO accesses forwarded to a device model
//! and answered, every access size and a sign-extending load among them, with the device
//! model's interrupt taken.

use std::time::Duration;

use xenolith_tests::{expect_unordered, expect_unordered_numbered, Boot, Running};

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

/// A hostile virtio driver (`tests/manifests/dm-hostile.toml`, test guest `virtio-blk`): one
/// case, the device marked as needing reset with the refusal logged, no answer to the hostile
/// request, and after a reset the device serves sector 0 again (the model never crashed).
fn hostile_case(case: &str, logged: &str) {
    let mut running = Boot::new(2, "")
        .manifest("tests/manifests/dm-hostile.toml")
        .domain_args("guest", &format!("case={case}"))
        .start();
    running.forbid("FAIL");
    running.forbid("panicked");
    running.forbid("crashing it");
    expect_unordered(
        &mut running,
        &[
            "guest: sector 0 begins \"The device-model\"",
            logged,
            &format!("guest: case {case}: the device needs a reset"),
            &format!("guest: PASS case {case}: refused, reset, served again"),
        ],
    );
}

#[test]
fn a_hostile_chain_that_loops_marks_the_device_needing_reset() {
    hostile_case("loop", "Loop");
}

#[test]
fn a_hostile_next_index_past_the_table_marks_the_device_needing_reset() {
    hostile_case("index", "IndexOutOfRange");
}

#[test]
fn a_hostile_buffer_outside_ram_marks_the_device_needing_reset() {
    hostile_case("outside", "OutsideRam");
}

#[test]
fn a_hostile_huge_length_marks_the_device_needing_reset() {
    hostile_case("huge", "TooLong");
}

#[test]
fn a_hostile_write_to_a_read_only_register_marks_the_device_needing_reset() {
    hostile_case("read-only", "ReadOnly");
}

/// Restart under I/O: the device model is crashed ten times while its target writes and reads
/// back sectors; every request completes OK, every read equals what was written, and the model
/// comes back each time from its preserved region.
#[test]
fn a_device_model_killed_ten_times_under_writes_loses_no_request() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/dm-kill.toml").start();
    running.forbid("FAIL");
    running.forbid("panicked");
    let lines = expect_unordered_numbered(
        &mut running,
        &[
            "guest: round 0 written and read back",
            "killer: kill 10 at",
            "killer: PASS kills=10",
            "guest: PASS 3000 writes read back equal, no I/O error",
        ],
    );
    assert!(
        lines[0].0 < lines[1].0 && lines[1].0 < lines[3].0,
        "the ten kills did not all fall among the writes: {lines:?}"
    );
}

/// A device model restarted after its target was rebuilt without it (paused by the killer
/// while the core rebuilt the guest): it does not restore the old incarnation's server or
/// devices, serves the new one from power-on, and the rebuilt guest's writes all complete.
#[test]
fn a_device_model_restarted_after_its_target_was_rebuilt_serves_it_from_power_on() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/dm-rebuild.toml").start();
    running.forbid("FAIL");
    running.forbid("panicked");
    // The reboot may come before or during the first incarnation's writes.
    expect_unordered(&mut running, &["(guest) shut down: reboot"]);
    let rebuilt = "device-model: d0 was rebuilt (generation ";
    let lines = expect_unordered_numbered(&mut running, &[rebuilt, "killer: PASS rebuilt"]);
    assert!(lines[0].1.contains("while no model ran"), "{:?}", lines[0]);
    // The guest's new incarnation starts over once the model serves it.
    expect_unordered(
        &mut running,
        &[
            "guest: round 0 written and read back",
            "guest: PASS 3000 writes read back equal, no I/O error",
        ],
    );
}

/// Waits for `marker` for up to 4 minutes (Linux under TCG), failing with the serial tail.
fn expect_linux(running: &mut Running, marker: &str) -> String {
    running.wait_for(marker, Duration::from_secs(240)).unwrap_or_else(|error| panic!("{error}"))
}

/// Issue 18's acceptance: Debian's Linux with virtio drivers only (no Xen PV device), its console
/// on the device model's PL011 (every line below reached the serial port through it), mounts
/// the ext4 filesystem on the device model's virtio-blk, writes eight files, remounts and reads
/// every one back with the same sha256, with no I/O error in its kernel log.
#[test]
fn linux_on_virtio_only_writes_and_reads_back_its_ext4_disk() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/dm-linux.toml").start();
    running.forbid("XENOLITH-CHECK disk fail");
    running.forbid("XENOLITH-CHECK disk-dmesg fail");
    running.forbid("panicked");
    running.forbid("crashing it");
    for marker in [
        "linux1: XENOLITH-DISK-MOUNTED",
        "linux1: XENOLITH-CHECK disk ok",
        "linux1: XENOLITH-CHECK disk-dmesg ok",
        "linux1: XENOLITH-DISK-DONE",
    ] {
        expect_linux(&mut running, marker);
    }
}

/// Issue 18's restart under I/O: the device model crashed ten times while Linux writes forty
/// files to its ext4 virtio disk; every kill falls among the writes, Linux's kernel log has no
/// I/O error, and every file's sha256 is right after a remount.
#[test]
fn linux_writes_through_ten_device_model_kills_without_an_io_error() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/dm-linux-kill.toml").start();
    running.forbid("XENOLITH-CHECK disk fail");
    running.forbid("XENOLITH-CHECK disk-dmesg fail");
    running.forbid("XENOLITH-DISK-WRITE-FAILED");
    running.forbid("killer: FAIL");
    running.forbid("panicked");
    let mounted = expect_linux(&mut running, "linux1: XENOLITH-DISK-MOUNTED");
    let lines = running
        .wait_for_all_numbered(
            &["killer: kill 1 at", "killer: kill 10 at", "linux1: XENOLITH-DISK-WRITTEN 40"],
            Duration::from_secs(600),
        )
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(
        lines[1].0 < lines[2].0,
        "the ten kills did not all fall among the writes ({mounted}): {lines:?}"
    );
    for marker in [
        "linux1: XENOLITH-CHECK disk ok",
        "linux1: XENOLITH-CHECK disk-dmesg ok",
        "linux1: XENOLITH-DISK-DONE",
    ] {
        expect_linux(&mut running, marker);
    }
}

/// A virtio-only Linux guest reboots under its device model: the core rebuilds it in place
/// (xl's default `on_reboot`), the model serves the new incarnation from power-on with the
/// disk as the first boot left it, and the second boot reads back every file the first wrote.
#[test]
fn linux_reboots_under_its_device_model_and_finds_its_files() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/dm-linux-reboot.toml").start();
    running.forbid("XENOLITH-CHECK-FAILED");
    running.forbid("device-model: FAIL");
    running.forbid("powering off");
    running.forbid("panicked");
    running.forbid("crashing it");
    for marker in [
        "linux1: XENOLITH-CHECK disk ok",
        "linux1: XENOLITH-DISK-REBOOTING",
        "(linux1) restarted: generation",
        "device-model: d2 was rebuilt (generation",
        "linux1: XENOLITH-DISK-REBOOTED",
        "linux1: XENOLITH-CHECK disk-reboot ok",
        "linux1: XENOLITH-CHECK disk-dmesg ok",
        "linux1: XENOLITH-DISK-DONE",
    ] {
        expect_linux(&mut running, marker);
    }
}

/// Linux's own virtio_net driver on the device model's virtio-net (looped back): eth0 comes up,
/// eight ARP requests go out, and eth0 receives every packet and byte it sent.
#[test]
fn linux_virtio_net_receives_what_it_sends() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/dm-linux-net.toml").start();
    running.forbid("XENOLITH-CHECK-FAILED");
    running.forbid("needs a reset");
    running.forbid("panicked");
    running.forbid("crashing it");
    let line = expect_linux(&mut running, "linux1: XENOLITH-CHECK virtio-net ok");
    assert!(line.contains("driver=virtio_net"), "{line}");
    expect_linux(&mut running, "linux1: XENOLITH-VNET-DONE");
}

/// The device model's virtio-net, looped back (`tests/manifests/dm-net.toml`, test guest
/// `virtio-net`): 200 frames of 60 to 1514 bytes, eight per notify, each received in order,
/// byte for byte, behind a 12-byte header with `num_buffers` 1.
#[test]
fn virtio_net_loops_two_hundred_frames_back_byte_for_byte() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/dm-net.toml").start();
    running.forbid("FAIL");
    running.forbid("panicked");
    running.forbid("crashing it");
    running.forbid("needs a reset");
    expect_unordered(
        &mut running,
        &[
            "guest: virtio-net up, MAC [02, 58, 4e, 00, 00, 01]",
            "guest: PASS 200 frames looped back",
        ],
    );
}
