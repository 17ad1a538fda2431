//! Grant tables between real domains in QEMU: a granter and a mapper sharing pages (mapped,
//! written, copied a MiB each way), every error path a guest can reach (with a third guest
//! mapping grants not its own: pinned for another domain, granted to another, never granted), a
//! write through a read-only grant of another domain crashing the writer alone while the
//! granter goes on, and a frame outliving its granter.

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
    running.forbid("(granter) shut down: crash");
    running.forbid("(mapper) shut down: crash");
    expect_unordered(
        &mut running,
        &[
            "granter: PASS granted, saw the mapper's write, 1 MiB copied in",
            "mapper: PASS mapped, read, wrote, copied 1 MiB each way",
            "mapper: bench grant-copy ",
            "mapper: bench grant-map-unmap ",
            // Xen's answer (`map_grant_ref`, `_set_status_v1`) to each grant not the mapper's.
            "errors: map the peer's ref 8 (mapped by another domain) -> Err(Status(-1)) as expected",
            "errors: map the peer's ref 11 (granted to another domain, not mapped) -> Err(Status(-1)) as expected",
            "errors: map the peer's ref 12 (in range, never granted) -> Err(Status(-1)) as expected",
            "errors: PASS grant error paths",
            // The errors guest's last act (after its PASS): a write to its read-only mapping
            // of the granter's ref 13 at MAP_AREA, which the core answers by crashing it alone.
            "errors: writing through the read-only mapping of d0's ref 13",
            "write at IPA 0xf1000000",
            ") not permitted; crashing it",
            "domain 2 (errors) shut down: crash",
        ],
    );
    // Then the granter: the crashed writer's grant is released, the page unchanged, and the
    // granter goes on to its end.
    expect_all(
        &mut running,
        &[
            "granter: PASS d2 crashed and destroyed; its read-only mapping of ref 13 released (flags 0x5)",
            "domain 0 (granter) shut down: poweroff",
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
