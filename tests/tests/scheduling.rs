//! Scheduling as a guest sees it: credit2 weights and caps, and the null scheduler. Shares are the
//! core's own accounting of each domain's run time between two heartbeats (`shares:` lines), so
//! they measure scheduling, not how fast the emulator is.

use xenolith_tests::{expect_all, expect_unordered, Boot, Running, TIMEOUT};

/// Each domain's share (percent of one pCPU) from the next `shares:` line.
fn next_shares(running: &mut Running) -> Vec<(String, f64)> {
    let line = running.wait_for("shares: ", TIMEOUT).unwrap_or_else(|error| panic!("{error}"));
    let list = line.split("shares: ").nth(1).expect("shares line");
    list.split(", ")
        .map(|entry| {
            let mut words = entry.split_whitespace();
            let _id = words.next();
            let name = words.next().expect("domain name").to_string();
            let percent =
                words.next().expect("share").trim_end_matches('%').parse().expect("number");
            (name, percent)
        })
        .collect()
}

fn share(shares: &[(String, f64)], name: &str) -> f64 {
    shares
        .iter()
        .find(|(domain, _)| domain == name)
        .unwrap_or_else(|| panic!("no {name} in {shares:?}"))
        .1
}

#[test]
fn credit2_weights_512_and_256_share_one_pcpu_two_to_one() {
    let mut running = Boot::new(1, "").manifest("tests/manifests/weights.toml").start();
    expect_unordered(&mut running, &["heavy: progress 1", "light: progress 1"]);
    // The first window includes start-up; measure the next two.
    next_shares(&mut running);
    for _ in 0..2 {
        let shares = next_shares(&mut running);
        let (heavy, light) = (share(&shares, "heavy"), share(&shares, "light"));
        let ratio = heavy / light;
        eprintln!("heavy {heavy}%, light {light}%, ratio {ratio:.3}");
        assert!(
            (1.7..=2.3).contains(&ratio),
            "weights 512:256 gave {heavy}% : {light}% (ratio {ratio:.3})"
        );
        assert!(heavy + light > 90.0, "the pCPU idled with work waiting: {shares:?}");
    }
}

#[test]
fn credit2_cap_of_25_holds_a_busy_guest() {
    let mut running = Boot::new(1, "").manifest("tests/manifests/caps.toml").start();
    expect_unordered(&mut running, &["capped: progress 1", "free: progress 1"]);
    next_shares(&mut running);
    for _ in 0..2 {
        let shares = next_shares(&mut running);
        let (capped, free) = (share(&shares, "capped"), share(&shares, "free"));
        eprintln!("capped {capped}%, free {free}%");
        assert!(capped <= 27.0, "cap 25 allowed {capped}%");
        assert!(capped >= 15.0, "the capped guest starved: {capped}%");
        assert!(free >= 65.0, "the uncapped guest did not get the rest: {free}%");
    }
}

#[test]
fn null_scheduler_runs_one_vcpu_per_pcpu() {
    let mut running =
        Boot::new(2, "sched=null heartbeat=2").manifest("tests/manifests/two-guests.toml").start();
    expect_all(&mut running, &["scheduler: null over 2 pCPUs"]);
    expect_unordered(&mut running, &["alpha: progress 2", "beta: progress 2"]);
    next_shares(&mut running);
    let shares = next_shares(&mut running);
    for name in ["alpha", "beta"] {
        // Each owns a pCPU outright.
        assert!(share(&shares, name) >= 90.0, "{name} did not own its pCPU: {shares:?}");
    }
}
