//! The core boots on QEMU virt (GICv3, EL2) with 1, 2 and 4 CPUs, brings every CPU online, checks
//! its own page tables, and proves its interrupts and timers work.

use xenolith_tests::{expect_all, Boot, TIMEOUT};

fn boots_with(cpus: u32) {
    let mut running = Boot::new(cpus, "").start();
    let last_online = format!("CPU{} online", cpus - 1);
    let all_online = format!("{cpus} of {cpus} CPUs online");
    let sgis = format!("SGI self-test passed: {cpus} CPUs");
    let ready = format!("Xenolith ready: {cpus} CPUs");
    let mut markers = vec![
        "Xenolith 0.1.0 (aarch64)",
        "boot bundle: system \"default\"",
        "memory: ",
        "W^X check passed",
        "EL2 MMU on",
        "CPU0 online",
    ];
    if cpus > 1 {
        markers.push(&last_online);
    }
    markers.extend([all_online.as_str(), &sgis, "timer: every online CPU ticking", &ready]);
    expect_all(&mut running, &markers);
}

#[test]
fn boots_with_one_cpu() {
    boots_with(1);
}

#[test]
fn boots_with_two_cpus() {
    boots_with(2);
}

#[test]
fn boots_with_four_cpus() {
    boots_with(4);
}

#[test]
fn maxcpus_leaves_the_rest_offline() {
    let mut running = Boot::new(4, "maxcpus=2").start();
    expect_all(
        &mut running,
        &["left offline (maxcpus=2)", "2 of 4 CPUs online", "Xenolith ready: 2 CPUs"],
    );
}

#[test]
fn heartbeat_reports_ticks_on_every_cpu() {
    let mut running = Boot::new(2, "heartbeat=1").start();
    expect_all(&mut running, &["Xenolith ready", "heartbeat: timer ticks per CPU ["]);
}

/// Each refused token is reported with its own message and refuses only itself: the parameters
/// before and after it on the same line take effect, and the refused one keeps its value.
#[test]
fn bad_command_line_values_are_refused_with_a_message() {
    // The bundle's line comes first (`loglvl=info heartbeat=10`, images/default.toml), then
    // this one: a valid parameter before the bad value and an unknown name, two after them.
    let line = "heartbeat=0 sched=bogus loglvl=debug frobnicate=1 maxcpus=1";
    let mut running = Boot::new(2, line).start();
    // The refusals come before the settings line (`command line: Params { .. }`); read them all.
    let mut refused = Vec::new();
    let settings = loop {
        let line = match running.next_line(TIMEOUT) {
            Ok(Some(line)) => line,
            Ok(None) => panic!("no settings line in {TIMEOUT:?}\n{:#?}", running.tail()),
            Err(error) => panic!("{error}"),
        };
        if let Some((_, refusal)) = line.split_once(" WARN  command line: ") {
            refused.push(refusal.to_string());
        } else if let Some((_, settings)) = line.split_once("command line: Params { ") {
            break settings.to_string();
        }
    };
    assert_eq!(
        refused,
        [
            "sched=bogus: expected one of credit2, null, rtds; keeping the previous value",
            "frobnicate: unknown parameter; ignoring it (check the spelling against the parameter list)",
        ],
        "the core's refusals of {line:?}"
    );
    for setting in ["heartbeat: 0,", "sched: Credit2,", "loglvl: Debug,", "maxcpus: Some(1),"] {
        assert!(settings.contains(setting), "no {setting:?} in the core's settings: {settings}");
    }
    // And they act: a debug-level line, one CPU of two, credit2.
    expect_all(
        &mut running,
        &[
            "DEBUG frame bitmap at ",
            "left offline (maxcpus=1)",
            "1 of 2 CPUs online",
            "Xenolith ready: 1 CPUs",
            "scheduler: credit2 over 1 pCPUs",
        ],
    );
}
