//! Grant tables between real domains in QEMU: a granter and a mapper sharing pages (mapped,
//! written, copied a MiB each way), every error path a guest can reach, a write through a
//! read-only grant mapping crashing the writer alone, and a frame outliving its granter.

use xenolith_tests::{expect_all, expect_unordered, Boot};

#[test]
fn grants_map_copy_and_end_and_every_error_path() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/grants.toml").start();
    running.forbid("FAIL");
    running.forbid("panicked");
    running.forbid("domain panic");
    // Only the errors guest (domain 2) may be crashed or complained about.
    running.forbid("domain 0: ");
    running.forbid("domain 1: ");
    expect_unordered(
        &mut running,
        &[
            "granter: PASS granted, saw the mapper's write, 1 MiB copied in",
            "mapper: PASS mapped, read, wrote, copied 1 MiB each way",
            "mapper: bench grant-copy ",
            "mapper: bench grant-map-unmap ",
            "errors: PASS grant error paths",
            // The errors guest's last act (after its PASS): a write to its read-only mapping
            // at MAP_AREA, which the core answers by crashing it alone.
            "errors: writing through a read-only grant mapping",
            "write at IPA 0xf1000000",
            ") not permitted; crashing it",
            "; crashing it",
            "domain 2 (errors) shut down: crash",
        ],
    );
}

#[test]
fn a_granted_frame_outlives_its_granter_until_unmapped() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/grant-orphan.toml").start();
    running.forbid("FAIL");
    running.forbid("panicked");
    running.forbid("domain panic");
    expect_all(
        &mut running,
        &[
            "granter: powering off with ref 8 mapped by d1",
            "domain 0 (granter) shut down: poweroff",
            "mapper: PASS the granter is gone and the page still reads the same",
            "of destroyed d0 freed after its last grant unmap",
            "mapper: unmapped the orphaned grant",
        ],
    );
}
