//! Busy domains on several pCPUs under `-icount shift=0`, where QEMU runs the CPUs one at a time
//! in one host thread (round robin): a CPU that waits for a lock another holds must give up its
//! turn (`wfe`) or the holder never runs again and the system wedges (issue 15: with two domains
//! in hypercall loops, `-smp 2` wedged right after the second domain was built, CPU0 spinning
//! in the domain table's lock that CPU1 held). Each domain makes null hypercalls forever, every
//! one of which takes the domain table's lock, and prints `calls N` every 2^14 calls: every
//! domain must get to 8 (131,072 calls).

use xenolith_tests::{expect_unordered, Boot};

fn every_domain_keeps_calling(cpus: u32, manifest: &'static str, names: &[&str]) {
    let mut running = Boot::new(cpus, "").manifest(manifest).icount().start();
    running.forbid("FAIL");
    let markers: Vec<String> = names.iter().map(|name| format!("{name}: calls 8")).collect();
    let markers: Vec<&str> = markers.iter().map(String::as_str).collect();
    expect_unordered(&mut running, &markers);
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
