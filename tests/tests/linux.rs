//! Debian's own arm64 Linux kernel (fetched and unpacked by the host tool, never committed) boots
//! unmodified as a Xenolith domain to the `/init` of a busybox initramfs, whose checks it prints
//! (`images/initramfs/init.sh`): Xen found, xenbus and xenstore answering (through the device
//! and through the Rust xenstore tools in the initramfs), the vCPUs online, the memory, the
//! clock, and a clean kernel log. Then the balloon shrinks and grows it while the core's page
//! counts follow (heartbeat lines), `poweroff -f` gives every frame back, and a panicking guest
//! takes nobody with it.
//!
//! Each boot is on one of QEMU's CPU models: `max` (SVE, SME, MTE and pointer authentication,
//! which the core hides from guests) or `cortex-a57` (none of them), with the core on 1 or 4
//! CPUs.

use std::time::Duration;

use xenolith_tests::{Boot, Running};

/// Linux's boot under TCG takes tens of seconds; on a loaded CI machine more.
const LINUX_TIMEOUT: Duration = Duration::from_secs(240);

/// `/init`'s checks, in the order it prints them (after the module loads).
const CHECKS: [&str; 8] =
    ["hypervisor", "xenbus", "xenstore", "xenstore-tools", "cpus", "memtotal", "clock", "dmesg"];

/// Waits for `marker`, failing the test with the serial tail after [`LINUX_TIMEOUT`].
fn wait(running: &mut Running, marker: &str) -> String {
    running.wait_for(marker, LINUX_TIMEOUT).unwrap_or_else(|error| panic!("{error}"))
}

/// The number after `key` in `line` (`key` included, e.g. `"MemTotal="`).
fn number_after(line: &str, key: &str) -> u64 {
    let start = line.find(key).unwrap_or_else(|| panic!("no {key:?} in {line:?}")) + key.len();
    let digits: String = line[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number after {key:?} in {line:?}"))
}

/// Forbids every failed check `/init` can print (it follows each with `XENOLITH-CHECK-FAILED`),
/// and the core crashing a domain.
fn forbid_failures(running: &mut Running) {
    running.forbid("XENOLITH-CHECK-FAILED");
    running.forbid("; crashing it");
}

/// Waits for every check of the one Linux guest to pass and returns its MemTotal in KiB. (Its
/// lines come through the kernel log: `(dN) [  seconds] XENOLITH-...`.)
fn expect_checks(running: &mut Running) -> u64 {
    let mut memtotal = 0;
    for check in CHECKS {
        let line = wait(running, &format!("XENOLITH-CHECK {check} ok"));
        if check == "memtotal" {
            memtotal = number_after(&line, "MemTotal=");
        }
    }
    wait(running, "XENOLITH-INIT-DONE");
    memtotal
}

/// The next heartbeat's memory line: frames free, and domain `domain`'s pages.
fn next_memory(running: &mut Running, domain: u16) -> (u64, u64) {
    let line = wait(running, "memory: ");
    (number_after(&line, "memory: "), number_after(&line, &format!("d{domain} ")))
}

/// One Linux guest of 256 MiB and 1 vCPU: its checks, the balloon, then `poweroff -f`, after
/// which it is built again (`on_poweroff = "restart"`). With `twice`, the second incarnation
/// does the same, and the frames free before each rebuild must match: every frame the first one
/// held came back (both counts are taken with no Linux domain and with the xenstore domain
/// holding one dead domain's ring page).
fn boots_balloons_and_powers_off(cpu: &'static str, cpus: u32, twice: bool) {
    let mut running =
        Boot::new(cpus, "").manifest("tests/manifests/linux-one.toml").cpu(cpu).start();
    forbid_failures(&mut running);
    wait(&mut running, "domain 1 (linux) built:");
    let mut free_before = Vec::new();
    for generation in [3, 4].into_iter().take(if twice { 2 } else { 1 }) {
        let memtotal = expect_checks(&mut running);
        // MemTotal is RAM less what the kernel keeps for itself: its image (about 30 MiB for
        // Debian's) and early allocations; never more than the domain has.
        assert!(
            (160 * 1024..=256 * 1024).contains(&memtotal),
            "MemTotal {memtotal} kB does not fit a 256 MiB domain"
        );
        let shrunk = wait(&mut running, "XENOLITH-CHECK balloon-shrink ok");
        let (free_small, pages_small) = next_memory(&mut running, 1);
        assert!(
            pages_small <= 65536 - 4096,
            "16 MiB ballooned out, yet d1 has {pages_small} pages"
        );
        let grown = wait(&mut running, "XENOLITH-CHECK balloon-grow ok");
        let (free_big, pages_big) = next_memory(&mut running, 1);
        // What Linux says it got back: 16 MiB, plus any page it had lent to its own unpopulated
        // allocations before (its target is its whole memory).
        let back = (number_after(&grown, "current_kb=") - number_after(&shrunk, "current_kb=")) / 4;
        assert!(back >= 4096, "Linux grew by {back} pages");
        assert_eq!(pages_big - pages_small, back, "the core gave d1 what Linux asked back");
        // The core's frames follow, give or take the stage-2 table frames the holes needed.
        let taken = free_small - free_big;
        assert!((back..=back + 16).contains(&taken), "growing by {back} pages took {taken} frames");
        wait(&mut running, "domain 1 (linux) shut down: poweroff");
        let restarted = format!("domain 1 (linux) restarted: generation {generation}");
        free_before.push(number_after(&wait(&mut running, &restarted), "; "));
    }
    if twice {
        assert_eq!(free_before[0], free_before[1], "frames free before each rebuild");
    }
}

#[test]
fn linux_on_max_with_one_cpu() {
    boots_balloons_and_powers_off("max,pauth-impdef=on", 1, true);
}

#[test]
fn linux_on_max_with_four_cpus() {
    boots_balloons_and_powers_off("max,pauth-impdef=on", 4, false);
}

#[test]
fn linux_on_cortex_a57_with_one_cpu() {
    boots_balloons_and_powers_off("cortex-a57", 1, false);
}

#[test]
fn linux_on_cortex_a57_with_four_cpus() {
    boots_balloons_and_powers_off("cortex-a57", 4, true);
}

/// Two Linux guests, the second with 2 vCPUs: the first panics (sysrq `c`) and the second keeps
/// running.
#[test]
fn a_panicking_linux_guest_takes_nobody_with_it() {
    let mut running = Boot::new(4, "").manifest("tests/manifests/linux-two.toml").start();
    forbid_failures(&mut running);
    // Both pass their checks and the victim panics right after its own, in whatever order the
    // two boots interleave.
    let panic_end = "end Kernel panic - not syncing: sysrq triggered crash";
    let lines = running
        .wait_for_all(&["XENOLITH-INIT-DONE", "XENOLITH-INIT-DONE", panic_end], LINUX_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    let mut done: Vec<&str> = lines[..2].iter().map(|line| line.get(..5).unwrap_or(line)).collect();
    done.sort_unstable();
    assert_eq!(done, ["(d1) ", "(d2) "], "both guests finish their checks: {lines:?}");
    assert!(lines[2].starts_with("(d1) "), "the victim is d1: {}", lines[2]);
    // The survivor goes on ticking, and the xenstore domain and core with it.
    let mut ticks = Vec::new();
    for _ in 0..2 {
        let line = wait(&mut running, "XENOLITH-TICK ");
        assert!(line.starts_with("(d2) "), "the survivor is d2: {line}");
        ticks.push(number_after(&line, "XENOLITH-TICK "));
    }
    assert!(ticks[1] > ticks[0]);
    wait(&mut running, "shares: ");
}

/// `reboot -f` in a Linux guest: with xl's default `on_reboot = "restart"` the core builds it
/// again, and the new incarnation boots to its checks too.
#[test]
fn a_rebooting_linux_guest_is_built_again() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/linux-reboot.toml").start();
    forbid_failures(&mut running);
    expect_checks(&mut running);
    wait(&mut running, "domain 1 (linux) shut down: reboot");
    wait(&mut running, "domain 1 (linux) restarted: generation 3");
    expect_checks(&mut running);
}

/// Types `command` and a line end into the focused console until `answer` appears (at most
/// three times, 30 s each: the shell may still be starting when the first is typed).
fn ask(running: &mut Running, command: &str, answer: &str) -> String {
    for _ in 0..3 {
        running.type_input(format!("{command}\n").as_bytes()).expect("typing on the UART");
        if let Ok(line) = running.wait_for(answer, Duration::from_secs(30)) {
            return line;
        }
    }
    panic!(
        "no {answer:?} after typing {command:?} three times; last lines:\n{}",
        running.tail().join("\n")
    )
}

/// Linux's hvc0, served by the console domain, is an interactive shell: what is typed on the
/// UART reaches the focused guest and its answers come back under its name; Ctrl-] three times
/// moves the focus to the second guest, then to the core, whose key handlers answer.
#[test]
fn typed_commands_reach_the_focused_linux_shell_and_focus_moves_on() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/linux-console.toml").start();
    forbid_failures(&mut running);
    running
        .wait_for_all(
            &["linux1: XENOLITH-INIT-DONE", "linux2: XENOLITH-INIT-DONE", "input to linux1"],
            LINUX_TIMEOUT,
        )
        .unwrap_or_else(|error| panic!("{error}"));
    let line = ask(&mut running, "echo XT-$((6*7))", "XT-42");
    assert!(line.starts_with("linux1: XT-42"), "{line}");
    let line = ask(&mut running, "uname -r", "-arm64");
    assert!(line.starts_with("linux1: 6."), "{line}");
    // The xenstore tools: its own name, a write read back, and a watch that another domain's
    // write fires (the node opened to every domain with xenstore-chmod).
    let line = ask(&mut running, "echo N$((1+1))=$(xenstore-read name)", "N2=");
    assert!(line.starts_with("linux1: N2=linux1"), "{line}");
    let line = ask(
        &mut running,
        "xenstore-write data/rt v-$((3*5)) && echo R$((2+2))T=$(xenstore-read data/rt)",
        "R4T=",
    );
    assert!(line.starts_with("linux1: R4T=v-15"), "{line}");
    // Each event prints the node's value then, so the event of linux2's write is told apart.
    let watch = "xenstore-write data/w start && xenstore-chmod data/w b$(xenstore-read domid) && \
                 { xenstore-watch data/w | while read p; do echo W$((4+4)):$(xenstore-read $p); done & }";
    ask(&mut running, watch, "W8:start");
    running.type_input(b"\x1d\x1d\x1d").expect("typing");
    wait(&mut running, "[console] input to linux2");
    let line = ask(&mut running, "echo on-$((1+1))-two", "on-2-two");
    assert!(line.starts_with("linux2: on-2-two"), "{line}");
    // linux2's write fires linux1's watch: its line and linux2's answer come in either order.
    running
        .type_input(b"xenstore-write /local/domain/2/data/w from-two && echo WRO$((1))TE\n")
        .expect("typing");
    let lines = running
        .wait_for_all(&["linux2: WRO1TE", "W8:from-two"], LINUX_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    // (After linux2's prompt, which is shown before its line ends.)
    assert!(lines[1].contains("linux1: W8:from-two"), "{lines:?}");
    running.type_input(b"\x1d\x1d\x1d").expect("typing");
    wait(&mut running, "[console] input to xenolith");
    ask(&mut running, "h", "keys: 'h' this list");
}
