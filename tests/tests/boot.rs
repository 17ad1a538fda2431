//! The core boots on QEMU virt (GICv3, EL2) with 1, 2 and 4 CPUs, brings every CPU online, checks
//! its own page tables, and proves its interrupts and timers work.

use xenolith_tests::{expect_all, Boot};

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

#[test]
fn bad_command_line_values_are_refused_with_a_message() {
    let mut running = Boot::new(1, "sched=bogus loglvl=debug frobnicate=1").start();
    expect_all(&mut running, &["command line: sched=bogus", "command line: ", "Xenolith ready"]);
}
