//! Event channels between real domains in QEMU: interdomain round trips through upcalls, closing
//! one end, and every error path a guest can reach, binding to a port offered to another domain
//! among them (sequenced so that the port is sure to be in that state).

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
            // Xen's `evtchn_bind_interdomain` refuses each with -EINVAL; the server's decoy is
            // unbound and offered to the client, its witness port is bound already.
            "errors: bind to the peer's decoy port (unbound, offered to another domain) -> Err(EINVAL) as expected",
            "errors: bind to the peer's witness port (bound to us already) -> Err(EINVAL) as expected",
            "errors: bind to the peer's port 10 (free) -> Err(EINVAL) as expected",
            "errors: PASS event channel errors and delivery",
            "server: PASS decoy port 2 still unbound, offered to d1, after the witness's binds",
        ],
    );
}
