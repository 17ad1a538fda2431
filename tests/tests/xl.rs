//! xl in the control domain (issue 16): commands typed at its console (the console domain's
//! input focus, moved with Ctrl-] three times), with xl's output.

use std::time::Duration;

use xenolith_tests::{Boot, Running, TIMEOUT};

/// Waits for `marker`, panicking with the serial tail on timeout.
fn wait(running: &mut Running, marker: &str) -> String {
    running.wait_for(marker, TIMEOUT).unwrap_or_else(|error| panic!("{error}"))
}

/// Moves the console domain's input focus (Ctrl-] three times) until it is on `name`.
fn focus(running: &mut Running, name: &str) {
    for _ in 0..16 {
        running.type_input(b"\x1d\x1d\x1d").expect("typing on the UART");
        let line = wait(running, "[console] input to ");
        if line.trim_end().ends_with(&format!("input to {name}")) {
            return;
        }
    }
    panic!("the input focus never reached {name}");
}

/// Types `command` at the focused console.
fn type_line(running: &mut Running, command: &str) {
    running.type_input(format!("{command}\r").as_bytes()).expect("typing on the UART");
}

#[test]
fn xl_at_the_control_domains_console_lists_and_destroys() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/xl.toml").start();
    running.forbid("FAIL");
    wait(&mut running, "control: xl ready");
    focus(&mut running, "control");
    type_line(&mut running, "xl list");
    let header = wait(&mut running, "Name                                        ID   Mem VCPUs");
    let row = wait(&mut running, "spinner     ");
    println!("{header}\n{row}");
    type_line(&mut running, "xl vcpu-list spinner");
    println!("{}", wait(&mut running, "VCPU   CPU State"));
    println!("{}", wait(&mut running, "spinner     "));
    type_line(&mut running, "xl sched-credit2");
    println!("{}", wait(&mut running, "Cpupool Pool-0"));
    type_line(&mut running, "xl info");
    let free = wait(&mut running, "free_memory ");
    // Bad configurations are refused at their line and column, and nothing is built.
    type_line(&mut running, "xl create made.cfg memory=4096");
    println!("{}", wait(&mut running, "memory: 4096 MiB is more than the"));
    type_line(&mut running, "xl create made.cfg vcpus=[1");
    println!("{}", wait(&mut running, "made.cfg:"));
    type_line(&mut running, "xl info");
    let after_bad = wait(&mut running, "free_memory ");
    assert_eq!(after_bad.rsplit(':').next(), free.rsplit(':').next(), "{free} / {after_bad}");
    type_line(&mut running, "xl create made.cfg");
    wait(&mut running, "Parsing config from made.cfg");
    wait(&mut running, "made: progress 1");
    type_line(&mut running, "xl uptime made");
    println!("{}", wait(&mut running, "made                                 "));
    type_line(&mut running, "xl list -l made");
    println!("{}", wait(&mut running, "\"name\": \"made\""));
    type_line(&mut running, "xl destroy made");
    type_line(&mut running, "xl info");
    let free_after = wait(&mut running, "free_memory ");
    assert_eq!(free_after.rsplit(':').next(), free.rsplit(':').next(), "{free} / {free_after}");
    type_line(&mut running, "xl destroy spinner");
    type_line(&mut running, "xl list");
    wait(&mut running, "Name                                        ID   Mem VCPUs");
}

/// The control domain is killed ten times at random points of an `xl create`/`xl destroy` loop
/// (each incarnation crashes itself at a random hypercall of its next ~1.5 rounds, seeded:
/// `tests/manifests/xl-kill.toml`) while three guests run. After each restart its `xl list`
/// shows no half-built (paused) domain; every round that completes leaves the same number of
/// free pages (no frame leaked, whichever point the kills hit); after the tenth restart it
/// finishes its rounds and the three guests are still running.
#[test]
fn ten_control_domain_kills_lose_no_guest_leak_no_frame_and_leave_no_half_built_domain() {
    let seed = xenolith_tests::seed();
    let mut running = Boot::new(2, "")
        .manifest("tests/manifests/xl-kill.toml")
        .domain_args("control", &format!("kills=10 seed={seed}"))
        .start();
    running.forbid("FAIL");
    let (mut restarts, mut free, mut listed) = (0, Vec::new(), 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = match running.next_line(left) {
            Ok(Some(line)) => line,
            Ok(None) => {
                panic!("no `loop done` in 10 minutes; last lines:\n{}", running.tail().join("\n"))
            }
            Err(error) => panic!("{error}"),
        };
        if line.contains("(d2)") || line.contains("(control)") {
            println!("{line}");
        }
        if line.contains("(control) restarted") {
            restarts += 1;
        }
        if let Some(at) = line.find("pages free") {
            let words: Vec<&str> = line[..at].split_whitespace().collect();
            free.push(words.last().and_then(|n| n.parse::<u64>().ok()).expect("a page count"));
        }
        // A row of `xl list`: its state letters (`r b p s c d`) must not say paused.
        let row: Vec<&str> = line.split_whitespace().collect();
        if row.len() == 7 && row[2].parse::<u16>().is_ok() && row[5].len() == 6 {
            listed += 1;
            assert!(!row[5].contains('p'), "a paused (half-built) domain after a restart: {line}");
        }
        if line.contains("control: loop done") {
            assert!(line.contains("after 10 restarts"), "{line}");
            break;
        }
    }
    println!(
        "seed {seed}: {restarts} restarts, {listed} rows listed, free pages per round {free:?}"
    );
    assert_eq!(restarts, 10);
    assert!(free.len() >= 3 && free.iter().all(|&pages| pages == free[0]), "{free:?}");
    for guest in ["alpha", "beta", "gamma"] {
        wait(&mut running, &format!("{guest}: progress"));
    }
}

/// Each domain's share (percent of one pCPU) in the next heartbeat's `shares:` line (the core's
/// own accounting of run time, as in tests/tests/scheduling.rs).
fn shares_of(running: &mut Running, a: &str, b: &str) -> (f64, f64) {
    let line = wait(running, "shares: ");
    let share = |name: &str| {
        let entry = line.split(", ").find(|entry| entry.split_whitespace().nth(1) == Some(name));
        let percent = entry.and_then(|entry| entry.split_whitespace().nth(2));
        percent.and_then(|p| p.trim_end_matches('%').parse::<f64>().ok()).unwrap_or(0.0)
    };
    (share(a), share(b))
}

/// `xl sched-credit2 -d heavy -w 512` at the console: two busy guests that shared one pCPU
/// evenly then share it two to one, and `xl sched-credit2 -d heavy` says so.
#[test]
fn xl_sched_credit2_changes_a_guests_measured_share() {
    let mut running = Boot::new(1, "").manifest("tests/manifests/xl-share.toml").start();
    running.forbid("FAIL");
    wait(&mut running, "control: xl ready");
    wait(&mut running, "light: progress 1");
    shares_of(&mut running, "heavy", "light");
    let (heavy, light) = shares_of(&mut running, "heavy", "light");
    println!("weights 256:256: heavy {heavy}%, light {light}%");
    assert!((0.8..=1.25).contains(&(heavy / light)), "{heavy}% : {light}%");
    focus(&mut running, "control");
    type_line(&mut running, "xl sched-credit2 -d heavy -w 512");
    type_line(&mut running, "xl sched-credit2 -d heavy");
    println!("{}", wait(&mut running, "heavy       "));
    // The window the change fell in is mixed; the next two are not.
    shares_of(&mut running, "heavy", "light");
    for _ in 0..2 {
        let (heavy, light) = shares_of(&mut running, "heavy", "light");
        println!("weights 512:256: heavy {heavy}%, light {light}%");
        assert!((1.7..=2.3).contains(&(heavy / light)), "{heavy}% : {light}%");
    }
}

/// `xl create linux3.cfg`: Debian's Linux kernel and initramfs from the bundle, its settings from
/// the bundle's xl.cfg text, run to its `/init` checks; `xl reboot` restarts it (xl's
/// `on_reboot`, applied by the control domain); `xl list` shows it; `xl destroy` gives every
/// frame back.
#[test]
fn xl_creates_reboots_and_destroys_a_debian_linux_guest() {
    let linux = Duration::from_secs(300);
    let mut running = Boot::new(2, "").manifest("tests/manifests/xl-linux.toml").start();
    running.forbid("FAIL");
    wait(&mut running, "control: xl ready");
    focus(&mut running, "control");
    type_line(&mut running, "xl info");
    let free = wait(&mut running, "free_memory ");
    type_line(&mut running, "xl create linux3.cfg");
    wait(&mut running, "Parsing config from linux3.cfg");
    running.wait_for("XENOLITH-INIT-DONE", linux).unwrap_or_else(|error| panic!("{error}"));
    // `xl reboot`: Linux reboots itself through the PV control protocol, the core keeps it shut
    // down for the toolstack, and the control domain applies xl's default `on_reboot`
    // (`restart`): destroyed and created again from the same xl.cfg, it boots a second time.
    type_line(&mut running, "xl reboot linux3");
    wait(&mut running, "Rebooting domain ");
    wait(&mut running, ") shut down: reboot");
    wait(&mut running, "(linux3) shut down (reason 1): Restart");
    wait(&mut running, "Parsing config from linux3.cfg");
    running.wait_for("XENOLITH-INIT-DONE", linux).unwrap_or_else(|error| panic!("{error}"));
    type_line(&mut running, "xl list linux3");
    println!("{}", wait(&mut running, "linux3    "));
    type_line(&mut running, "xl destroy linux3");
    type_line(&mut running, "xl info");
    let after = wait(&mut running, "free_memory ");
    assert_eq!(after.rsplit(':').next(), free.rsplit(':').next(), "{free} / {after}");
}

/// A property of one line of output.
type LineCheck<'a> = &'a dyn Fn(&str) -> bool;

/// What `command` prints at the control domain's console, line by line without the `(dN) `
/// `prefix` the core gives the control domain's lines: up to the header of an `xl vcpu-list`
/// typed after it. For `xl dmesg` these are the console ring's lines.
fn output_of(running: &mut Running, prefix: &str, command: &str) -> Vec<String> {
    type_line(running, command);
    type_line(running, "xl vcpu-list");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = match running.next_line(left) {
            Ok(Some(line)) => line,
            Ok(None) => {
                panic!("`{command}` never ended; last lines:\n{}", running.tail().join("\n"))
            }
            Err(error) => panic!("{error}"),
        };
        let Some(text) = line.strip_prefix(prefix) else { continue };
        if text.starts_with("Name ") && text.contains("VCPU   CPU State") {
            return lines;
        }
        lines.push(text.trim_end().to_string());
    }
}

/// `xl dmesg` reads the core's console ring (`XEN_SYSCTL_readconsole`): the core's banner and
/// log lines from boot, a guest's `console_io` line and the lines the console domain wrote for
/// a guest's PV console. `xl dmesg -c` prints the ring and empties it: the next `xl dmesg` has
/// none of those, only what was printed after the clear.
#[test]
fn xl_dmesg_reads_the_cores_console_ring_and_dmesg_c_empties_it() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/xl-dmesg.toml").start();
    running.forbid("FAIL");
    let banner = wait(&mut running, "a Xen-compatible hypervisor with a small trusted core");
    let banner = banner.trim().to_string();
    let found = running
        .wait_for_all(&["control: xl ready", "chatty: done total=3"], TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    let prefix = &found[0][..found[0].find("control: xl ready").unwrap()];
    println!("banner {banner:?}; the control domain's lines start with {prefix:?}");
    focus(&mut running, "control");

    let ring = output_of(&mut running, prefix, "xl dmesg");
    println!("xl dmesg: {} lines, the first {:?}", ring.len(), ring.first());
    let has = |lines: &[String], check: LineCheck<'_>| lines.iter().any(|l| check(l));
    let core_banner = |line: &str| line.trim() == banner;
    // `(d3) chatty: hello ...`, not an echo of it (`(d2) (d3) chatty: hello ...`).
    let guest_line = |line: &str| {
        line.split_once(") ").is_some_and(|(domain, text)| {
            domain.starts_with("(d") && text.starts_with("chatty: hello from a Xenolith domain")
        })
    };
    let checks: [(&str, LineCheck<'_>); 4] = [
        ("the core's banner", &core_banner),
        ("the core's `Xenolith ready` log line", &|line| {
            line.starts_with('[') && line.contains("Xenolith ready: ")
        }),
        ("a line of chatty's PV console (from the console domain)", &|line| {
            line == "chatty: seq 0"
        }),
        ("a console_io line of chatty", &guest_line),
    ];
    for (what, check) in checks {
        assert!(has(&ring, check), "no {what} in xl dmesg:\n{}", ring.join("\n"));
    }

    let cleared = output_of(&mut running, prefix, "xl dmesg -c");
    assert!(has(&cleared, &core_banner), "xl dmesg -c prints before it clears");
    let after = output_of(&mut running, prefix, "xl dmesg");
    println!("xl dmesg after xl dmesg -c: {} lines", after.len());
    for (what, check) in checks {
        assert!(!has(&after, check), "{what} is still in the ring:\n{}", after.join("\n"));
    }
    // The `xl vcpu-list` typed after `xl dmesg -c` printed after the clear: it is kept.
    let listed = |line: &str| line.strip_prefix(prefix).is_some_and(|l| l.starts_with("Name "));
    assert!(has(&after, &listed), "no line printed after the clear:\n{}", after.join("\n"));
}
