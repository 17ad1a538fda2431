//! Restart policies in QEMU: a domain that crashes is rebuilt from its pristine image with the
//! same id, a new generation and its preserved region untouched, on RAM that reads as zero
//! wherever the image is not (each incarnation fills its fresh RAM before crashing); one whose
//! policy is `never` stays dead.

use xenolith_tests::{expect_unordered, Boot};

#[test]
fn a_restart_policy_rebuilds_a_domain_with_its_id_and_preserved_region() {
    let mut running = Boot::new(1, "").manifest("tests/manifests/restart.toml").start();
    running.forbid("FAIL");
    running.forbid("domain 1 (crasher) restarted");
    expect_unordered(
        &mut running,
        &[
            "domain 0 (restarter) restarted: generation 4, restart 1, preserved region kept",
            "domain 0 (restarter) restarted: generation 6, restart 3, preserved region kept",
            "restarter: PASS restarted 3 times, id 0 kept",
            "preserved region kept, fresh memory zero in every incarnation",
            "peer: PASS dead incarnation",
            "domain 1 destroyed",
        ],
    );
}
