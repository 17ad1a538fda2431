//! Busy domains on several pCPUs under `-icount shift=0`, where QEMU runs the CPUs one at a time
//! in one host thread (round robin): a CPU that waits for a lock another holds must give up its
//! turn (`wfe`) or the holder never runs again and the system wedges (issue 15: with two domains
//! in hypercall loops, `-smp 2` wedged right after the second domain was built, CPU0 spinning
//! in the domain table's lock that CPU1 held). Each domain makes null hypercalls forever and
//! prints `calls N` every 2^14 calls: every domain must get to 8 (131,072 calls).
//!
//! Those hypercalls are made as readers of the domain table, each holding only its own domain:
//! when QEMU switches CPUs in the middle of one, the next CPU's hypercall goes on beside it. The
//! heartbeat's count of readers side by side must therefore grow; with one lock over the whole
//! table (as before issue 15) it stays 0.

use xenolith_tests::{expect_unordered, Boot, TIMEOUT};

fn every_domain_keeps_calling(cpus: u32, manifest: &'static str, names: &[&str]) {
    let mut running = Boot::new(cpus, "heartbeat=1").manifest(manifest).icount().start();
    running.forbid("FAIL");
    let markers: Vec<String> = names.iter().map(|name| format!("{name}: calls 8")).collect();
    let markers: Vec<&str> = markers.iter().map(String::as_str).collect();
    expect_unordered(&mut running, &markers);
    // The next heartbeat's count of hypercalls that ran beside another domain's.
    let marker = "heartbeat: domain table readers side by side ";
    let line = running.wait_for(marker, TIMEOUT).unwrap_or_else(|error| panic!("{error}"));
    let count = line.split(marker).nth(1).and_then(|rest| rest.trim().parse::<u64>().ok());
    println!("{cpus} pCPUs: {line}");
    assert!(count.is_some_and(|count| count > 0), "no hypercalls ran side by side: {line}");
}

#[test]
fn two_busy_domains_on_two_pcpus_under_icount_both_make_progress() {
    every_domain_keeps_calling(2, "tests/manifests/smp-busy-two.toml", &["alpha", "beta"]);
}

#[test]
fn four_busy_domains_on_four_pcpus_under_icount_all_make_progress() {
    every_domain_keeps_calling(
        4,
        "tests/manifests/smp-busy-four.toml",
        &["alpha", "beta", "gamma", "delta"],
    );
}
