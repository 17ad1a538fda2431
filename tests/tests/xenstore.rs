//! xenstore in QEMU: the xenstore-stub domain serving real guests through their ring pages and
//! event channels, surviving ten kills without losing a committed write or a watch, and refusing
//! a hostile guest, without ever crashing, while the others go on.
//!
//! Both tests draw their randomness from a seed the test prints (`seed N`); set
//! `XENOLITH_SEED=N` to run one again with the same seed.

use xenolith_tests::{expect_all, expect_unordered_numbered, seed, Boot, TIMEOUT};

/// The number after `key` in `line` (`commits=123 ...` gives 123 for `commits=`).
fn number_after(line: &str, key: &str) -> u64 {
    let Some((_, rest)) = line.split_once(key) else { panic!("no {key:?} in {line:?}") };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number after {key:?} in {line:?}"))
}

#[test]
fn two_guests_talk_through_write_and_watch_while_hostile_guests_are_refused() {
    let seed = seed();
    let mut running = Boot::new(2, "")
        .manifest("tests/manifests/xenstore.toml")
        .domain_args("hostile", &format!("seed={seed}"))
        .start();
    running.forbid("FAIL");
    running.forbid("domain panic");
    running.forbid("PANIC");
    // The xenstore domain must not stop, whatever the hostile guest sends: its manifest entry
    // says `restart = "never"`, and the core's lines for a shutdown, a crash, a restart or a
    // destruction of it (lifecycle/mod.rs, lifecycle/restart.rs) fail the test at once.
    for stopped in [
        "(xenstore) shut down",
        "(xenstore) restarted",
        "domain 0 destroyed",
        "crashing it",
        "serving 4 domains again",
    ] {
        running.forbid(stopped);
    }
    let seeded = format!("random bytes (seed {seed})");
    let markers = [
        "xenstore-stub: serving 4 domains",
        // The filler is released, and only then does the hostile guest send random requests.
        "domain 4: its requests would overflow the preserved region; released",
        "hostile: the filler has stopped; random requests next",
        "hostile: 500 random requests -> ",
        seeded.as_str(),
        // The store drops the hostile guest's connection for the random bytes, and it sees so.
        "domain 3: protocol violation",
        "hostile: random bytes -> disconnected",
        "hostile: PASS xs-hostile",
        // Then chat-a hears of it, and both go on writing and watching.
        "chat-a: the hostile guest's signal: the store disconnected it",
        "chat-b: the peer's first ping after the hostile guest's disconnection",
        "chat-a: PASS xs-chat rounds=100, then 20 after the hostile guest's disconnection",
        "chat-b: PASS xs-chat rounds=100, then 20 after the hostile guest's disconnection",
        "filler: PASS xs-filler stopped after",
    ];
    let lines = expect_unordered_numbered(&mut running, &markers);
    let line_of = |marker: &str| {
        let index = markers.iter().position(|known| *known == marker).expect("a marker above");
        lines[index].0
    };
    for (before, after) in [
        (markers[1], markers[2]),
        (markers[2], markers[3]),
        (markers[3], markers[4]),
        (markers[4], markers[5]),
        (markers[5], markers[6]),
        (markers[6], markers[7]),
        (markers[6], markers[8]),
        (markers[8], markers[9]),
        (markers[8], markers[10]),
        (markers[9], markers[11]),
    ] {
        assert!(
            line_of(before) < line_of(after),
            "{before:?} (serial line {}) must come before {after:?} (serial line {}); seed {seed}",
            line_of(before),
            line_of(after)
        );
    }
    for (number, line) in &lines {
        println!("{number}: {line}");
    }
}

#[test]
fn xenstore_stub_killed_ten_times_loses_no_committed_write_and_no_watch() {
    let seed = seed();
    let words = format!("seed={seed}");
    let mut running = Boot::new(2, "")
        .manifest("tests/manifests/xenstore-torture.toml")
        .domain_args("torture", &words)
        .domain_args("killer", &words)
        .start();
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
    let lines = expect_unordered_numbered(
        &mut running,
        &["torture: PASS xs-torture", "xs-killer: PASS kills=10"],
    );
    let pass = &lines[0].1;
    println!("{pass}");
    assert!(pass.contains(&format!("seed={seed}")), "the torture guest did not take seed {seed}");
    let commits = number_after(pass, "commits=");
    let checked = number_after(pass, "checked=");
    let interrupted = number_after(pass, "interrupted=");
    // Every value ever committed was read back, not only the last 256 (the killer waits for 40
    // commits between kills, so there are over 400).
    assert!(commits > 256 && checked == commits, "{checked} of {commits} commits read back");
    // A kill dooms at most the one transaction open at the time; at least one must have.
    assert!(
        (1..=10).contains(&interrupted),
        "{interrupted} of 10 kills interrupted an open transaction, expected 1 to 10; seed {seed}"
    );
}
