//! The console domain in QEMU: every guest's PV console ring served under its name, kills that
//! lose and repeat no line, input typed after each restart, and guests that break their rings
//! disconnected or clamped alone.

use std::time::{Duration, Instant};

use xenolith_tests::{expect_all, expect_unordered, Boot, Running, TIMEOUT};

/// What the serial line showed of one `console-lines` guest.
#[derive(Default)]
struct Seen {
    /// The numbers of its `seq <n>` lines, in the order they arrived.
    seqs: Vec<u64>,
    /// Its `done total=<n>`.
    total: Option<u64>,
    /// Every line read meanwhile.
    lines: Vec<String>,
}

/// Waits for each of `markers` not already among the lines `seen` read.
fn expect_later(running: &mut Running, seen: &Seen, markers: &[&str]) {
    let missing: Vec<&str> = markers
        .iter()
        .copied()
        .filter(|marker| !seen.lines.iter().any(|line| line.contains(marker)))
        .collect();
    expect_unordered(running, &missing);
}

/// Reads serial lines until `name`'s `done total=` line (or `timeout`), recording its lines and
/// handing every line to `each` as well. Panics with the serial tail on a `FAIL` line, on a
/// timeout, or when QEMU exits.
fn follow(
    running: &mut Running,
    name: &str,
    timeout: Duration,
    mut each: impl FnMut(&mut Running, &str),
) -> Seen {
    let deadline = Instant::now() + timeout;
    let (seq, done) = (format!("{name}: seq "), format!("{name}: done total="));
    let mut seen = Seen::default();
    while seen.total.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match running.next_line(left) {
            Ok(Some(line)) => line,
            Ok(None) => panic!("timed out waiting for {done:?}; last lines:\n{}", tail(&seen)),
            Err(error) => panic!("{error}"),
        };
        if line.contains("FAIL") {
            panic!("a failure: {line}\nlast lines:\n{}", tail(&seen));
        }
        if let Some(at) = line.find(&seq) {
            let number = line[at + seq.len()..].trim().parse().unwrap_or(u64::MAX);
            seen.seqs.push(number);
        }
        if let Some(at) = line.find(&done) {
            seen.total = line[at + done.len()..].trim().parse().ok();
        }
        each(running, &line);
        seen.lines.push(line);
    }
    seen
}

/// The last 60 lines read, but for `seq` lines (only the last of a run of those is kept).
fn tail(seen: &Seen) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in &seen.lines {
        if line.contains(": seq ") && kept.last().is_some_and(|last| last.contains(": seq ")) {
            kept.pop();
        }
        kept.push(line);
    }
    kept[kept.len().saturating_sub(60)..].join("\n")
}

/// Every line `0..total` arrived exactly once, in order.
fn assert_all_once_in_order(seen: &Seen) {
    let total = seen.total.expect("a total");
    let expected: Vec<u64> = (0..total).collect();
    if seen.seqs != expected {
        let first_bad = seen.seqs.iter().zip(&expected).position(|(a, b)| a != b);
        panic!(
            "{} lines arrived for {total} written; first difference at index {first_bad:?}",
            seen.seqs.len()
        );
    }
}

/// The console domain is crashed ten times at random moments while a guest writes numbered lines
/// through its ring: every line arrives once and in order, and a line typed after each restart
/// reaches the guest.
#[test]
fn ten_console_domain_kills_lose_and_repeat_no_line_and_input_goes_on() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/console-kill.toml").start();
    let mut restarts = Vec::new();
    let mut pings = Vec::new();
    let mut restarted = None;
    let seen = follow(&mut running, "lines", Duration::from_secs(240), |running, line| {
        // The core: `domain 1 (console) restarted: generation <g>, restart <k>, ...`; then the
        // new incarnation's `console: serving ...` (restored, or fresh if it was killed before
        // its first save) says it reads input again.
        if let Some(at) = line.find("(console) restarted: generation ") {
            let rest = line[at..].split("restart ").nth(1).unwrap_or("");
            restarted = rest.split(',').next().and_then(|k| k.parse::<u32>().ok());
        }
        if let (true, Some(k)) = (line.contains("console: serving "), restarted) {
            restarts.push(k);
            restarted = None;
            running.type_input(format!("ping {k}\n").as_bytes()).expect("typing");
        }
        if let Some(at) = line.find("lines: got ping ") {
            pings.push(line[at + "lines: got ping ".len()..].trim().parse::<u32>().unwrap_or(0));
        }
    });
    assert_eq!(restarts, (1..=10).collect::<Vec<_>>(), "the console domain's restarts");
    assert_eq!(pings, (1..=10).collect::<Vec<_>>(), "the pings typed after each restart");
    assert_all_once_in_order(&seen);
    assert!(seen.total.unwrap() >= 200);
    expect_later(&mut running, &seen, &["killer: PASS kills=10", "lines: PASS wrote"]);
}

/// A guest in `mode` breaks its ring next to a neighbour writing 200 lines: `expected` appears
/// and the neighbour's lines all arrive once, in order.
fn a_broken_ring_costs_its_own_domain(manifest: &'static str, expected: &[&str]) {
    let mut running = Boot::new(2, "").manifest(manifest).start();
    let mut hostile_lines = 0;
    let seen = follow(&mut running, "neighbour", Duration::from_secs(120), |_, line| {
        hostile_lines += usize::from(line.starts_with("hostile: "));
    });
    assert_all_once_in_order(&seen);
    assert_eq!(seen.total, Some(200));
    expect_later(&mut running, &seen, expected);
    if manifest.ends_with("flood.toml") {
        // Clamped, not starved: the flood is served too.
        assert!(hostile_lines > 0, "no line of the flooding guest arrived");
    }
}

#[test]
fn a_producer_far_ahead_disconnects_that_guest_alone() {
    a_broken_ring_costs_its_own_domain(
        "tests/manifests/console-hostile-ahead.toml",
        &["console: d1 (hostile): out_prod", "neighbour: PASS wrote 200 lines"],
    );
}

#[test]
fn a_producer_going_backwards_disconnects_that_guest_alone() {
    a_broken_ring_costs_its_own_domain(
        "tests/manifests/console-hostile-backwards.toml",
        &["console: d1 (hostile): out_prod", "neighbour: PASS wrote 200 lines"],
    );
}

#[test]
fn a_flooding_guest_is_clamped_and_its_neighbour_goes_on() {
    a_broken_ring_costs_its_own_domain(
        "tests/manifests/console-hostile-flood.toml",
        &["hostile: flooding", "neighbour: PASS wrote 200 lines"],
    );
}

/// A xenstore domain that never answers (`mute` holds `xenstore` and only spins:
/// `tests/manifests/console-mute-xenstore.toml`): the console domain's watch of `xl console`'s
/// key waits for ever, and the consoles are served all the same: a guest's lines arrive, Ctrl-]
/// three times moves the focus round, and a line typed reaches the guest.
#[test]
fn consoles_are_served_while_xenstore_never_answers() {
    let mut running =
        Boot::new(2, "").manifest("tests/manifests/console-mute-xenstore.toml").start();
    running.forbid("FAIL");
    running.forbid("console: watching");
    expect_all(&mut running, &["console: serving ", "echo: seq 5"]);
    // The first guest without capabilities has the focus; round once: the core, mute, echo.
    for name in ["xenolith", "mute", "echo"] {
        running.type_input(b"\x1d\x1d\x1d").expect("typing");
        let line =
            running.wait_for("[console] input to ", TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        assert!(line.trim_end().ends_with(&format!("input to {name}")), "{line}");
    }
    running.type_input(b"ping 3\n").expect("typing");
    expect_all(&mut running, &["echo: got ping 3", "echo: seq "]);
}
