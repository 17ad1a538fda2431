//! Bounded guest atomics in QEMU (issue 14): a guest that keeps the words it shares with the core
//! changing from another vCPU cannot hold a pCPU; with the core's bound lowered it is crashed, and
//! its peer, whose calls made the core update those words, goes on.

use xenolith_tests::{expect_all, expect_unordered, Boot};

/// The hammer (d0) toggles its event words and grant flags from vCPU 1; the peer (d1) sends on
/// its port and maps its grant in a loop. With one attempt per update the core gives up on the
/// first word that changes under it and crashes the hammer, never the peer.
#[test]
fn a_guest_hammering_its_shared_words_is_crashed_and_its_peer_goes_on() {
    let mut running = Boot::new(2, "test_guest_atomic_attempts=1")
        .manifest("tests/manifests/atomics.toml")
        .start();
    running.forbid("FAIL");
    running.forbid("domain 1: it kept");
    // The hammer's vCPU 1 may be crashed before its vCPU 0 says it started it.
    expect_unordered(
        &mut running,
        &[
            "test hook: guest-shared words get 1 update attempts",
            "atomics-hammer: hammering its event words",
            "atomics-peer: bound to d0's port",
            "domain 0: it kept a word it shares with the core changing; crashing it",
        ],
    );
    expect_all(&mut running, &["atomics-peer: d0 is gone", "atomics-peer: PASS"]);
}
