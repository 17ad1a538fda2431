//! Event channels between real domains in QEMU: interdomain round trips through upcalls, closing
//! one end, and every error path a guest can reach.

use xenolith_tests::{expect_unordered, Boot};

#[test]
fn ten_thousand_event_round_trips_and_every_error_path() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/events.toml").start();
    running.forbid("FAIL");
    running.forbid("panicked");
    expect_unordered(
        &mut running,
        &[
            "server: PASS answered 10000 events",
            "client: PASS 10000 event round trips; peer closed, port left unbound",
            "errors: PASS event channel errors and delivery",
        ],
    );
}
