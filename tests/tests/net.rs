//! netback in QEMU (issue 17): Xen's network backend as a restartable service domain between
//! frontends, Rust netfronts and Debian's Linux `xen-netfront`.

use std::time::Duration;

use xenolith_tests::{
    expect_all, expect_unordered, expect_unordered_numbered, focus, seed, type_line, Boot,
};

/// Two Rust netfronts through netback's switch: every one of `netb`'s 200 frames comes back
/// from `neta` intact, and neither vif ever leaves `Connected`.
#[test]
fn rust_netfronts_exchange_frames_through_the_switch() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/net-rust.toml").start();
    running.forbid("FAIL");
    running.forbid(": net state ");
    running.forbid("disconnected");
    expect_unordered(
        &mut running,
        &[
            "netback: serving 0 vifs again",
            "neta: net up 00:16:3e:00:00:0a",
            "netb: net up 00:16:3e:00:00:0b",
            "netback: vif3.0 connected: 1 queue(s)",
            "netback: vif4.0 connected: 1 queue(s)",
            "netb: PASS net-send 200 frames",
        ],
    );
}

/// Packets of 64,000 bytes in 16 transmit slots each (`NETTXF_more_data`), from a sender that
/// wrote its buffers once and sends them again (zero-copy), reach a frontend that takes
/// packets of several receive buffers (`feature-sg`): netback's page-aligned buffers and the
/// core's block copies carry every byte (the sink checks each packet's data against its
/// checksum). The sender outruns the checking sink, so netback's bounded backlog drops some
/// packets (as a switch drops what a slow port cannot take); those that arrive are whole.
#[test]
fn rust_netfronts_move_64_kb_packets_in_many_slots() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/net-sg.toml").start();
    running.forbid("FAIL");
    running.forbid("vif4.0 disconnected");
    let lines = expect_unordered_numbered(
        &mut running,
        &[
            "netback: vif3.0 connected: 1 queue(s), sg true",
            "blast: net-blast sending 300 frames of 64000 bytes (zero-copy",
            "blast: net-blast done 300 frames (backend answered 0 errors, 0 dropped)",
            "sink: bench net-sink frames=",
            "sink: PASS net-sink",
        ],
    );
    let line = &lines[3].1;
    let number = |key: &str| -> u64 {
        let at = line.find(key).expect("the key") + key.len();
        line[at..].split(' ').next().and_then(|n| n.parse().ok()).expect("a number")
    };
    let (frames, bytes) = (number("frames="), number("bytes="));
    assert!(frames >= 16, "too few packets arrived to say anything: {line}");
    assert_eq!(bytes, (frames - 1) * 64_000, "every packet counted whole: {line}");
}

/// netback crashed ten times at random moments while `netb` sends frames to `neta` (at least
/// 3000, and on until the killer is done): every frame still comes back intact (lost ones are
/// sent again), each new incarnation serves both vifs again from its preserved region, neither
/// frontend ever leaves `Connected`, and the last kill lands while frames are still flowing.
#[test]
fn netback_killed_ten_times_loses_no_vif() {
    // The kill moments come from the test's seed (printed; XENOLITH_SEED replays them).
    let seed = format!("seed={}", seed());
    let mut running = Boot::new(2, "")
        .manifest("tests/manifests/net-rust-kill.toml")
        .domain_args("killer", &seed)
        .start();
    running.forbid("FAIL");
    running.forbid(": net state ");
    running.forbid("disconnected");
    // An incarnation may be killed before it says anything (a kill during its start is as
    // random a moment as any); every one that does speak serves both vifs.
    running.forbid("serving 1 vifs again");
    let zero: Vec<String> =
        (1..=10).map(|restart| format!("serving 0 vifs again (restart {restart},")).collect();
    for line in &zero {
        running.forbid(line);
    }
    let seen = expect_unordered_numbered(
        &mut running,
        &["killer: PASS kills=10", "netback: serving 2 vifs again (restart 10,"],
    );
    let last_restart = seen[1].0;
    let done = expect_unordered_numbered(&mut running, &["netb: PASS net-send "]);
    let sent: u32 = done[0]
        .1
        .split("net-send ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no frame count in {:?}", done[0].1));
    assert!(sent >= 3000, "netb sent {sent} frames, fewer than asked: {:?}", done[0].1);
    assert!(
        done[0].0 > last_restart,
        "the transfer ended (line {}) before the last restart (line {last_restart})",
        done[0].0
    );
}

/// Boots `tests/manifests/net-hostile.toml` with `bad` sending one malformed request of
/// `class`: netback disconnects `bad`'s vif alone (its reason contains `reason`), tells it
/// `Closing`, never touches the honest vifs, and `netb`'s frames keep flowing to `neta` after
/// the disconnection.
fn hostile_frontend_is_disconnected_alone(class: &str, reason: &str) {
    hostile_with(class, reason, &[]);
}

/// As [`hostile_frontend_is_disconnected_alone`], waiting for `extra` too.
fn hostile_with(class: &str, reason: &str, extra: &[&str]) {
    let mut running = Boot::new(2, "")
        .manifest("tests/manifests/net-hostile.toml")
        .domain_args("bad", &format!("class={class}"))
        .start();
    running.forbid("FAIL");
    running.forbid("netb: net state ");
    running.forbid("neta: net state ");
    running.forbid("vif3.0 disconnected");
    running.forbid("vif4.0 disconnected");
    let name = class.split(' ').next().unwrap_or(class);
    let sent = format!("bad: net hostile sent {name}");
    let mut markers =
        vec![sent.as_str(), "netback: vif5.0 disconnected: ", "bad: net backend state 5"];
    markers.extend_from_slice(extra);
    let seen = expect_unordered_numbered(&mut running, &markers);
    assert!(seen[1].1.contains(reason), "{class}: expected {reason:?} in {:?}", seen[1].1);
    let done = expect_unordered_numbered(&mut running, &["netb: PASS net-send 1500 frames"]);
    assert!(done[0].0 > seen[1].0, "{class}: netb finished before bad was disconnected");
}

/// A packet for one peer whose later slot names a grant never given, after the switch
/// learned where the peer is: netback copies it straight into the peer's buffers, the copy
/// fails, and netback finds the sender at fault (its pieces do not copy in either): the
/// sender's vif alone is disconnected, and the peer drops the packet (its responses say
/// `NETIF_RSP_ERROR`) and goes on.
#[test]
fn hostile_bad_fragment_for_one_peer_is_disconnected_alone() {
    hostile_with(
        "bad-fragment peer=00:16:3e:00:00:0a",
        "grant copy of a transmitted packet failed",
        &["neta: net dropped 1 packets the backend marked bad"],
    );
}

/// XSA-39's class: a request producer far more than a ring ahead.
#[test]
fn hostile_ring_jump_is_disconnected_alone() {
    hostile_frontend_is_disconnected_alone("ring-jump", "ImpossibleProducer");
}

/// A grant reference the frontend never granted.
#[test]
fn hostile_bad_gref_is_disconnected_alone() {
    hostile_frontend_is_disconnected_alone("bad-gref", "grant copy");
}

/// XSA-90's class: data past the end of its page.
#[test]
fn hostile_bad_offset_is_disconnected_alone() {
    hostile_frontend_is_disconnected_alone("bad-offset", "CrossesPage");
}

/// XSA-228's class: a fragment larger than what is left of the packet.
#[test]
fn hostile_bad_size_is_disconnected_alone() {
    hostile_frontend_is_disconnected_alone("bad-size", "FragmentTooLarge");
}

/// XSA-270's class: more slots than the fatal threshold.
#[test]
fn hostile_too_many_fragments_is_disconnected_alone() {
    hostile_frontend_is_disconnected_alone("too-many-frags", "TooManySlots");
}

/// A first slot whose size, once the fragments are taken out, overflows its page.
#[test]
fn hostile_slot_overflow_is_disconnected_alone() {
    hostile_frontend_is_disconnected_alone("slot-overflow", "CrossesPage");
}

/// The sha256 on a `XENOLITH-NET-SENT`/`-RECV <bytes> <sha256>` line, with its byte count.
fn figures(line: &str) -> (u64, String) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with("XENOLITH-NET-")).expect("a marker");
    (words[at + 1].parse().expect("a byte count"), words[at + 2].to_owned())
}

/// Boots `manifest` (two Linux guests with xen-netfront on netback's switch) and checks what
/// issue 17 asks of them: each pings the other, 16 MiB goes from linux2 to linux1 with busybox
/// nc and arrives whole (equal sha256), neither vif ever leaves Connected, no guest restarts;
/// linux2 has two vCPUs and connects two queues.
/// Every marker's serial line number and line: the six of the transfer, then `extra`'s.
fn linux_transfer(boot: Boot, extra: &[&str]) -> Vec<(u64, String)> {
    let mut running = boot.start();
    for forbidden in [
        "FAIL",
        "XENOLITH-CHECK-FAILED",
        "XENOLITH-NET-STATE",
        "disconnected",
        "(linux1) restarted",
        "(linux2) restarted",
    ] {
        running.forbid(forbidden);
    }
    let mut markers = vec![
        "linux1: XENOLITH-NET-PING ok 10.0.0.2",
        "linux2: XENOLITH-NET-PING ok 10.0.0.1",
        "linux2: XENOLITH-NET-SENT ",
        "linux1: XENOLITH-NET-RECV ",
        "linux2: XENOLITH-NET-SEND-DONE",
        "netback: vif4.0 connected: 2 queue(s), sg true, gso true, csum offload true",
    ];
    markers.extend_from_slice(extra);
    // TCP's retransmission timer backs off while frames are lost (netback restarting): give
    // the transfer up to five minutes.
    let seen = running
        .wait_for_all_numbered(&markers, Duration::from_secs(300))
        .unwrap_or_else(|error| panic!("{error}"));
    let (sent, received) = (figures(&seen[2].1), figures(&seen[3].1));
    assert_eq!(sent.0, 16 << 20, "{}", seen[2].1);
    assert_eq!(received, sent, "what arrived is not what was sent");
    seen
}

/// Two Debian Linux guests, unmodified xen-netfront, ping each other and move 16 MiB.
#[test]
fn linux_guests_ping_each_other_and_move_16_mib_through_netback() {
    linux_transfer(Boot::new(2, "").manifest("tests/manifests/net-linux.toml"), &[]);
}

/// The same transfer with netback crashed ten times at random moments while the data flows:
/// the data arrives whole, both vifs stay Connected throughout, no guest restarts, and every
/// kill lands before the data has all arrived.
#[test]
fn linux_transfer_survives_ten_netback_kills() {
    let extra = ["killer: kill 10 at ", "netback: serving 2 vifs again (restart 10,"];
    // The kill moments come from the test's seed (printed; XENOLITH_SEED replays them).
    let boot = Boot::new(2, "")
        .manifest("tests/manifests/net-linux-kill.toml")
        .domain_args("killer", &format!("seed={}", seed()));
    let seen = linux_transfer(boot, &extra);
    let (sending, received, last_kill) = (seen[2].0, seen[3].0, seen[6].0);
    assert!(
        sending < last_kill && last_kill < received,
        "the last kill (line {last_kill}) did not land while the data flowed (lines {sending} to \
         {received})"
    );
}

/// `xl network-attach` at the control domain's console gives a running guest a vif that
/// netback connects (the guest then exchanges frames through it), and `xl network-detach`
/// takes one away (a boot domain's, which the control domain wrote once from the manifest and
/// does not write again): netback drops it once the toolstack removed its directories.
#[test]
fn xl_network_attach_and_detach_a_running_guests_vif() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/net-attach.toml").start();
    running.forbid("FAIL");
    running.forbid("disconnected");
    expect_unordered(
        &mut running,
        &["control: xl ready", "netc: waiting for device/vif/0", "control: neta: vif 0 served by"],
    );
    // Written once: a detached boot domain's vif is not written again.
    running.forbid("control: neta: vif 0 served by");
    focus(&mut running, "control");
    type_line(&mut running, "xl network-attach netc backend=netback mac=00:16:3e:00:00:0c");
    expect_unordered(
        &mut running,
        &[
            "netback: vif4.0 connected: 1 queue(s)",
            "netc: net up 00:16:3e:00:00:0c",
            "netc: PASS net-send 100 frames",
        ],
    );
    type_line(&mut running, "xl network-detach neta 0");
    expect_unordered(&mut running, &["netback: vif3.0 removed"]);
}

/// Linux's xen-netfront unbound from its vif, unloaded and loaded again: the vif closes
/// (netback disconnects it and writes `Closed`), initialises again (netback offers `InitWait`
/// again) and connects again, and the peer answers pings through it.
#[test]
fn a_reloaded_linux_netfront_closes_and_connects_again() {
    let mut running = Boot::new(2, "")
        .manifest("tests/manifests/net-linux.toml")
        .domain_args("linux1", "xenolith.then=net-reload:10.0.0.2")
        .domain_args("linux2", "xenolith.then=wait")
        .start();
    for forbidden in ["FAIL", "XENOLITH-CHECK-FAILED", "RELOAD fail", "disconnected"] {
        running.forbid(forbidden);
    }
    expect_all(
        &mut running,
        &[
            "netback: vif3.0 connected: ",
            "linux1: XENOLITH-NET-PING ok 10.0.0.2",
            "netback: vif3.0 closed by its frontend",
            "linux1: XENOLITH-NET-RELOAD unloaded",
            "netback: vif3.0 offered again to its frontend",
            "netback: vif3.0 connected: ",
            "linux1: XENOLITH-NET-RELOAD ok 10.0.0.2 answers again",
        ],
    );
}
