//! xenstore in QEMU: the xenstore-stub domain serving real guests through their ring pages and
//! event channels, surviving ten kills without losing a committed write or a watch, and refusing
//! a hostile guest while the others go on.

use xenolith_tests::{expect_all, expect_unordered, Boot, TIMEOUT};

#[test]
fn two_guests_talk_through_write_and_watch_while_hostile_guests_are_refused() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/xenstore.toml").start();
    running.forbid("FAIL");
    running.forbid("domain panic");
    running.forbid("PANIC");
    expect_unordered(
        &mut running,
        &[
            "xenstore-stub: serving 4 domains",
            "chat-a: PASS xs-chat rounds=100",
            "chat-b: PASS xs-chat rounds=100",
            "hostile: PASS xs-hostile",
            "domain 3: protocol violation",
            "domain 4: its requests would overflow the preserved region; released",
            "filler: PASS xs-filler stopped after",
        ],
    );
}

#[test]
fn xenstore_stub_killed_ten_times_loses_no_committed_write_and_no_watch() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/xenstore-torture.toml").start();
    running.forbid("FAIL");
    running.forbid("domain panic");
    running.forbid("PANIC");
    running.forbid("not restarted");
    for kill in 1..=10 {
        let restarted = format!("domain 0 (xenstore) restarted: generation {}", kill + 3);
        expect_all(&mut running, &[restarted.as_str()]);
        let line = running
            .wait_for(&format!("xs-killer: kill {kill} downtime_ns="), TIMEOUT)
            .unwrap_or_else(|error| panic!("{error}"));
        println!("{line}");
    }
    expect_unordered(&mut running, &["torture: PASS xs-torture", "xs-killer: PASS kills=10"]);
}
