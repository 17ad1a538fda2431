//! Host tests of credit2, mostly by simulation (`sched::simulation`). Figures are printed; see
//! them with `cargo test -p xenolith-kernel --lib sched -- --nocapture`.
//!
//! # Invariants
//! - Deterministic: fixed inputs and seeds, simulated time only; a failure reproduces exactly.

use super::super::simulation::{params, percent, Load, Sim, Stats, MICROS, MILLIS, SECONDS};
use super::*;

const WINDOW: Nanos = 10 * SECONDS;

fn pinned(domain: u16, cpus: CpuMask) -> VcpuParams {
    VcpuParams { hard_affinity: cpus, ..VcpuParams::new(domain) }
}

fn soft(domain: u16, cpus: CpuMask) -> VcpuParams {
    VcpuParams { soft_affinity: cpus, ..VcpuParams::new(domain) }
}

/// Two busy vCPUs of `weights` on one pCPU for [`WINDOW`]: their CPU times.
fn share(weights: [u16; 2]) -> [Nanos; 2] {
    let mut credit2 = Credit2::new(1);
    let mut sim = Sim::new(&mut credit2, 1);
    sim.check_work_conserving = true;
    sim.add(0, params(1, weights[0], 0), Load::Busy);
    sim.add(1, params(2, weights[1], 0), Load::Busy);
    sim.run_until(WINDOW);
    [sim.stats(0).ran, sim.stats(1).ran]
}

#[test]
fn weights_512_and_256_share_two_to_one() {
    let [heavy, light] = share([512, 256]);
    let ratio = heavy as f64 / light as f64;
    println!(
        "credit2 512:256 on 1 pCPU: {:.2}% / {:.2}%, ratio {ratio:.3}",
        percent(heavy, WINDOW),
        percent(light, WINDOW)
    );
    assert!((ratio - 2.0).abs() <= 0.1, "ratio {ratio}");
    assert_eq!(heavy + light, WINDOW, "no idle time");
}

#[test]
fn equal_weights_share_evenly() {
    let [first, second] = share([256, 256]);
    let ratio = first as f64 / second as f64;
    println!("credit2 256:256 on 1 pCPU: ratio {ratio:.3}");
    assert!((ratio - 1.0).abs() <= 0.05, "ratio {ratio}");
    let [first, second] = share([1, 65535]);
    println!(
        "credit2 1:65535 on 1 pCPU: {:.2}% / {:.2}%",
        percent(first, WINDOW),
        percent(second, WINDOW)
    );
    // As in Xen, extreme ratios are bounded by the 1 ms minimum timeslice and the credit floor:
    // the light vCPU still gets about 1 ms every other 10 ms epoch.
    assert!(first > 0 && first < WINDOW / 10, "the lightest weight still runs, a little");
}

#[test]
fn three_busy_vcpus_on_two_pcpus_share_evenly() {
    let mut credit2 = Credit2::new(2);
    let mut sim = Sim::new(&mut credit2, 2);
    sim.check_work_conserving = true;
    for vcpu in 0..3 {
        sim.add(vcpu, params(vcpu as u16, 256, 0), Load::Busy);
    }
    sim.run_until(WINDOW);
    let shares = [0, 1, 2].map(|vcpu| percent(sim.stats(vcpu).ran, WINDOW));
    println!("credit2 3 busy vCPUs on 2 pCPUs: {shares:.2?}");
    for share in shares {
        assert!((share - 200.0 / 3.0).abs() <= 200.0 / 3.0 * 0.05, "{shares:?}");
    }
}

#[test]
fn weights_share_several_pcpus() {
    // 2 pCPUs, weights 512:256:256:256: shares 2:1:1:1 of 200%, i.e. 80%, 40%, 40%, 40%.
    let mut credit2 = Credit2::new(2);
    let mut sim = Sim::new(&mut credit2, 2);
    sim.check_work_conserving = true;
    for (vcpu, weight) in [512, 256, 256, 256].into_iter().enumerate() {
        sim.add(vcpu, params(vcpu as u16, weight, 0), Load::Busy);
    }
    sim.run_until(WINDOW);
    let shares = [0, 1, 2, 3].map(|vcpu| percent(sim.stats(vcpu).ran, WINDOW));
    println!("credit2 512:256:256:256 on 2 pCPUs: {shares:.2?}");
    for (share, expected) in shares.into_iter().zip([80.0, 40.0, 40.0, 40.0]) {
        assert!((share - expected).abs() <= expected * 0.05, "{shares:?}");
    }
}

#[test]
fn cap_25_holds_when_alone() {
    let mut credit2 = Credit2::new(1);
    let mut sim = Sim::new(&mut credit2, 1);
    sim.add(0, params(1, 256, 25), Load::Busy);
    sim.run_until(WINDOW);
    let share = percent(sim.stats(0).ran, WINDOW);
    println!("credit2 cap 25 alone on 1 pCPU: {share:.3}%");
    assert!((24.0..=26.0).contains(&share), "{share}%");
}

#[test]
fn cap_of_one_percent_holds_despite_the_minimum_timeslice() {
    let mut credit2 = Credit2::new(1);
    let mut sim = Sim::new(&mut credit2, 1);
    sim.add(0, params(1, 256, 1), Load::Busy);
    sim.run_until(WINDOW);
    let share = percent(sim.stats(0).ran, WINDOW);
    println!("credit2 cap 1 alone on 1 pCPU: {share:.3}%");
    assert!(share <= 1.0 + 0.1, "overruns are charged to the next periods: {share}%");
}

#[test]
fn caps_50_and_50_share_one_pcpu() {
    let mut credit2 = Credit2::new(1);
    let mut sim = Sim::new(&mut credit2, 1);
    sim.add(0, params(1, 256, 50), Load::Busy);
    sim.add(1, params(2, 256, 50), Load::Busy);
    sim.run_until(WINDOW);
    let shares = [0, 1].map(|vcpu| percent(sim.stats(vcpu).ran, WINDOW));
    println!("credit2 caps 50+50 on 1 pCPU: {shares:.3?}");
    for share in shares {
        assert!((47.0..=51.0).contains(&share), "{shares:?}");
    }
}

#[test]
fn a_capped_vcpu_leaves_the_rest_to_others() {
    let mut credit2 = Credit2::new(1);
    let mut sim = Sim::new(&mut credit2, 1);
    sim.add(0, params(1, 256, 25), Load::Busy);
    sim.add(1, params(2, 256, 0), Load::Busy);
    sim.run_until(WINDOW);
    let (capped, free) = (percent(sim.stats(0).ran, WINDOW), percent(sim.stats(1).ran, WINDOW));
    println!("credit2 cap 25 + uncapped on 1 pCPU: {capped:.3}% / {free:.3}%");
    assert!((23.0..=26.0).contains(&capped) && free >= 74.0 && capped + free >= 99.9);
}

#[test]
fn a_refilled_vcpu_gets_an_idle_pcpu_back() {
    // vCPU 0 (cap 50) parks; at each refill the pCPU whose timer fires may be busy with the pinned
    // hog, so the refilled vCPU must be sent to the idle one.
    let mut credit2 = Credit2::new(2);
    let mut sim = Sim::new(&mut credit2, 2);
    sim.add(0, params(1, 256, 50), Load::Busy);
    sim.add(1, VcpuParams { hard_affinity: CpuMask::single(0), ..params(2, 256, 0) }, Load::Busy);
    sim.run_until(WINDOW);
    let (capped, hog) = (percent(sim.stats(0).ran, WINDOW), percent(sim.stats(1).ran, WINDOW));
    println!("credit2 cap 50 next to a pinned hog on 2 pCPUs: {capped:.3}% / {hog:.3}%");
    assert!((49.0..=51.0).contains(&capped) && hog >= 99.0, "{capped}% / {hog}%");
}

#[test]
fn a_domain_cap_is_shared_by_its_vcpus() {
    let mut credit2 = Credit2::new(2);
    let mut sim = Sim::new(&mut credit2, 2);
    sim.add(0, params(1, 256, 100), Load::Busy);
    sim.add(1, params(1, 256, 100), Load::Busy);
    sim.run_until(WINDOW);
    let (first, second) = (sim.stats(0).ran, sim.stats(1).ran);
    let total = percent(first + second, WINDOW);
    println!("credit2 domain cap 100, 2 busy vCPUs, 2 pCPUs: {total:.3}% of one pCPU");
    assert!((99.0..=101.0).contains(&total), "{total}%");
    assert!(percent(first.abs_diff(second), WINDOW) < 5.0, "the quota splits the pool evenly");
}

#[test]
fn cap_set_and_cleared_at_run_time() {
    let mut credit2 = Credit2::new(1);
    let mut sim = Sim::new(&mut credit2, 1);
    sim.add(0, params(1, 256, 0), Load::Busy);
    sim.run_until(SECONDS);
    assert_eq!(sim.stats(0).ran, SECONDS);
    sim.set_params(0, params(1, 256, 10));
    sim.run_until(2 * SECONDS);
    let capped = percent(sim.stats(0).ran - SECONDS, SECONDS);
    sim.set_params(0, params(1, 256, 0));
    sim.run_until(3 * SECONDS);
    let freed = sim.stats(0).ran - SECONDS - (capped * SECONDS as f64 / 100.0) as Nanos;
    println!("credit2 cap 10 set at run time: {capped:.3}%");
    assert!((9.0..=11.0).contains(&capped), "{capped}%");
    assert!(percent(freed, SECONDS) >= 99.0, "uncapped again: {}", percent(freed, SECONDS));
}

#[test]
fn hard_affinity_is_never_violated() {
    // Eight vCPUs of mixed loads and pseudo-random hard affinities over four pCPUs; the simulator
    // checks every decision, and that no pCPU idles while a vCPU allowed there waits.
    let mut credit2 = Credit2::new(4);
    let mut sim = Sim::new(&mut credit2, 4);
    sim.check_work_conserving = true;
    let mut seed: u32 = 0x2545_f491;
    for vcpu in 0..8 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let hard = CpuMask::from_bits(u64::from((seed >> 16) % 15 + 1));
        let weight = [128, 256, 512][vcpu % 3];
        let load = if vcpu % 2 == 0 {
            Load::Busy
        } else {
            Load::Bursty {
                burst: (vcpu as Nanos + 1) * 150 * MICROS,
                sleep: (vcpu as Nanos) * 700 * MICROS,
            }
        };
        let vcpu_params =
            VcpuParams { weight, hard_affinity: hard, ..VcpuParams::new(vcpu as u16) };
        sim.add(vcpu, vcpu_params, load);
    }
    sim.run_until(WINDOW);
    for vcpu in 0..8 {
        assert!(sim.stats(vcpu).ran > 0, "vCPU {vcpu} starved");
    }
    println!(
        "credit2 random affinities: {} decisions, pCPU busy {:?}",
        sim.decisions,
        &sim.busy[..4]
    );
}

#[test]
fn pinned_vcpus_stay_pinned_and_others_fill_the_gaps() {
    let mut credit2 = Credit2::new(2);
    let mut sim = Sim::new(&mut credit2, 2);
    sim.check_work_conserving = true;
    sim.add(0, pinned(1, CpuMask::single(1)), Load::Busy);
    sim.add(1, pinned(2, CpuMask::single(1)), Load::Busy);
    sim.add(2, VcpuParams::new(3), Load::Busy);
    sim.run_until(WINDOW);
    let [a, b, c] = [0, 1, 2].map(|vcpu| sim.stats(vcpu));
    assert_eq!(a.ran_on[1] + b.ran_on[1], a.ran + b.ran, "pinned to pCPU 1");
    assert!(
        c.ran_on[0] as f64 >= WINDOW as f64 * 0.99,
        "the free vCPU keeps pCPU 0: {:?}",
        c.ran_on
    );
    assert!(percent(a.ran.abs_diff(b.ran), WINDOW) < 1.0);
}

#[test]
fn two_busy_vcpus_keep_two_pcpus_busy() {
    let mut credit2 = Credit2::new(2);
    let mut sim = Sim::new(&mut credit2, 2);
    sim.check_work_conserving = true;
    sim.add(0, VcpuParams::new(1), Load::Busy);
    sim.add(1, VcpuParams::new(2), Load::Busy);
    sim.run_until(WINDOW);
    assert_eq!(sim.busy[..2], [WINDOW, WINDOW], "no idle time while work exists");
    assert_eq!((sim.stats(0).ran, sim.stats(1).ran), (WINDOW, WINDOW));
    assert!(
        sim.stats(0).ran_on[0] == WINDOW || sim.stats(0).ran_on[1] == WINDOW,
        "no needless migration"
    );
}

#[test]
fn soft_affinity_is_honoured_when_free_pcpus_allow_it() {
    let mut credit2 = Credit2::new(4);
    let mut sim = Sim::new(&mut credit2, 4);
    sim.check_work_conserving = true;
    sim.add(0, soft(1, CpuMask::single(2)), Load::Busy);
    sim.add(1, soft(2, CpuMask::single(3)), Load::Busy);
    sim.add(2, VcpuParams::new(3), Load::Bursty { burst: 300 * MICROS, sleep: 200 * MICROS });
    sim.add(3, VcpuParams::new(4), Load::Bursty { burst: 2 * MILLIS, sleep: 3 * MILLIS });
    sim.run_until(WINDOW);
    let (first, second) = (sim.stats(0), sim.stats(1));
    println!(
        "credit2 soft affinity: vCPU 0 {:.2}% on pCPU 2, vCPU 1 {:.2}% on pCPU 3",
        percent(first.ran_on[2], first.ran),
        percent(second.ran_on[3], second.ran)
    );
    assert!(percent(first.ran_on[2], first.ran) >= 99.0);
    assert!(percent(second.ran_on[3], second.ran) >= 99.0);
}

#[test]
fn a_vcpu_moves_to_its_soft_affinity_once_that_pcpu_frees() {
    let mut credit2 = Credit2::new(2);
    let mut sim = Sim::new(&mut credit2, 2);
    sim.check_work_conserving = true;
    sim.add(0, pinned(1, CpuMask::single(1)), Load::BusyUntil(SECONDS));
    sim.add(1, soft(2, CpuMask::single(1)), Load::Busy);
    sim.run_until(SECONDS);
    assert_eq!(sim.stats(1).ran_on[0], SECONDS, "pCPU 1 was taken: it ran on pCPU 0 meanwhile");
    sim.run_until(2 * SECONDS);
    let moved = sim.stats(1).ran_on[1];
    println!("credit2 soft affinity after pCPU 1 frees: {:.2}% on it", percent(moved, SECONDS));
    assert!(moved >= SECONDS - MAX_TIMER - RATELIMIT, "moved within a timeslice: {moved}");
}

#[test]
fn a_blocked_vcpu_gets_nothing_and_others_absorb_its_share() {
    let mut credit2 = Credit2::new(1);
    let mut sim = Sim::new(&mut credit2, 1);
    sim.check_work_conserving = true;
    sim.add(0, VcpuParams::new(1), Load::BusyUntil(SECONDS));
    sim.add(1, VcpuParams::new(2), Load::Busy);
    sim.run_until(WINDOW);
    let (blocked, busy) = (sim.stats(0).ran, sim.stats(1).ran);
    println!("credit2 vCPU blocked after 1 s: {blocked} ns / {busy} ns");
    assert!(blocked.abs_diff(SECONDS / 2) <= 2 * MAX_TIMER, "half of the first second: {blocked}");
    assert_eq!(blocked + busy, WINDOW);
}

/// A busy hog, joined after 53 ms by an I/O-like vCPU of `load` (so that it starts with more
/// credit than the hog, not a tie): what the I/O vCPU got over [`WINDOW`].
fn io_against_hog(load: Load) -> Stats {
    let mut credit2 = Credit2::new(1);
    let mut sim = Sim::new(&mut credit2, 1);
    sim.check_work_conserving = true;
    sim.add(0, VcpuParams::new(1), Load::Busy);
    sim.run_until(53 * MILLIS);
    sim.add(1, VcpuParams::new(2), load);
    sim.run_until(53 * MILLIS + WINDOW);
    assert_eq!(sim.stats(0).ran + sim.stats(1).ran, 53 * MILLIS + WINDOW, "never idle");
    sim.stats(1)
}

#[test]
fn an_io_vcpu_preempts_a_cpu_hog_within_the_rate_limit() {
    // Sleeps shorter than the rate limit: the hog, picked when the I/O vCPU blocked, keeps the
    // pCPU for the rest of its 1 ms. (Xen would not even tickle it, and let it finish a timeslice
    // of up to 10 ms.)
    let stats = io_against_hog(Load::Bursty { burst: 100 * MICROS, sleep: 400 * MICROS });
    println!(
        "credit2 I/O vCPU (100 us bursts, 400 us sleeps) vs hog: {:.2}% CPU, {} wake-ups, \
         worst latency {} us",
        percent(stats.ran, WINDOW),
        stats.wakes,
        stats.max_latency / MICROS
    );
    assert!(stats.max_latency <= RATELIMIT - 400 * MICROS, "latency {}", stats.max_latency);
    // Each cycle: 100 us run, 400 us asleep, at most 600 us waiting out the rate limit.
    assert!(percent(stats.ran, WINDOW) >= 100.0 * 100.0 / 1_100.0 - 0.1);
}

#[test]
fn an_io_vcpu_with_long_sleeps_preempts_a_cpu_hog_at_once() {
    let stats = io_against_hog(Load::Bursty { burst: 200 * MICROS, sleep: 5 * MILLIS });
    println!(
        "credit2 I/O vCPU (200 us bursts, 5 ms sleeps) vs hog: {:.2}% CPU, worst latency {} ns",
        percent(stats.ran, WINDOW),
        stats.max_latency
    );
    assert_eq!(stats.max_latency, 0, "more credit than the hog, which ran past the rate limit");
}

#[test]
fn yield_hands_the_pcpu_over_within_the_rate_limit() {
    let mut credit2 = Credit2::new(1);
    credit2.add_vcpu(0, VcpuParams::new(1), 0).unwrap();
    credit2.add_vcpu(1, VcpuParams::new(2), 0).unwrap();
    assert_eq!(credit2.wake(0, 0), Some(0));
    assert_eq!(credit2.schedule(0, 0).vcpu, Some(0));
    assert_eq!(credit2.wake(1, 10), Some(0), "more credit than the running one: preempt");
    assert_eq!(credit2.schedule(0, 20).vcpu, Some(0), "within the rate limit");
    credit2.yield_now(0, 30);
    assert_eq!(credit2.schedule(0, 40).vcpu, Some(1), "yield ignores the rate limit and credit");
}

#[test]
fn sleep_and_remove_kick_the_pcpu_running_the_vcpu() {
    let mut credit2 = Credit2::new(2);
    for vcpu in 0..2 {
        credit2.add_vcpu(vcpu, VcpuParams::new(1), 0).unwrap();
        let cpu = credit2.wake(vcpu, 0).expect("an idle pCPU");
        assert_eq!(credit2.schedule(cpu, 0).vcpu, Some(vcpu));
    }
    let running_first = (0..2).find(|&cpu| credit2.current(cpu) == Some(0)).unwrap();
    assert_eq!(credit2.sleep(0, 5), Some(running_first));
    assert_eq!(credit2.schedule(running_first, 5).vcpu, None);
    assert_eq!(credit2.sleep(0, 6), None, "asleep already, running nowhere");
    let running_second = 1 - running_first;
    assert_eq!(credit2.remove_vcpu(1), Some(running_second));
    assert_eq!(credit2.current(running_second), None);
    assert_eq!(credit2.schedule(running_second, 7), Decision::IDLE);
    assert_eq!(credit2.remove_vcpu(1), None, "gone already");
    assert_eq!(credit2.wake(1, 8), None);
}

#[test]
fn affinity_change_moves_a_running_vcpu() {
    let mut credit2 = Credit2::new(2);
    let mut sim = Sim::new(&mut credit2, 2);
    sim.check_work_conserving = true;
    sim.add(0, pinned(1, CpuMask::single(0)), Load::Busy);
    sim.run_until(SECONDS);
    sim.set_params(0, pinned(1, CpuMask::single(1)));
    assert_eq!((sim.running(0), sim.running(1)), (None, Some(0)), "moved at once");
    sim.run_until(2 * SECONDS);
    assert_eq!(sim.stats(0).ran_on, {
        let mut on = [0; MAX_PCPUS];
        on[..2].copy_from_slice(&[SECONDS, SECONDS]);
        on
    });
}

/// Runs the same simulation on `reference` and on `probed`, after `probe` made calls that must
/// fail, and checks they behave alike.
fn assert_changes_nothing(probe: impl FnOnce(&mut Credit2)) {
    let build = |credit2: &mut Credit2| {
        credit2.add_vcpu(0, params(1, 512, 0), 0).unwrap();
        credit2.add_vcpu(1, params(2, 256, 30), 0).unwrap();
        credit2
            .add_vcpu(2, VcpuParams { hard_affinity: CpuMask::single(1), ..params(2, 256, 30) }, 0)
            .unwrap();
    };
    let run = |credit2: &mut Credit2| {
        let mut sim = Sim::new(credit2, 2);
        for vcpu in 0..3 {
            if let Some(cpu) = sim.sched.wake(vcpu, 0) {
                sim.sched.schedule(cpu, 0);
            }
        }
        sim.run_until(SECONDS);
        (0..3).map(|vcpu| sim.stats(vcpu)).collect::<Vec<_>>()
    };
    let (mut reference, mut probed) = (Credit2::new(2), Credit2::new(2));
    build(&mut reference);
    build(&mut probed);
    probe(&mut probed);
    assert_eq!(run(&mut reference), run(&mut probed));
}

#[test]
fn invalid_params_are_refused_and_change_nothing() {
    assert_changes_nothing(|credit2| {
        let good = params(1, 512, 0);
        let cases = [
            (VcpuParams { weight: 0, ..good }, SchedError::InvalidWeight),
            (VcpuParams { cap: 201, ..good }, SchedError::InvalidCap),
            (VcpuParams { hard_affinity: CpuMask::EMPTY, ..good }, SchedError::EmptyHardAffinity),
            (
                VcpuParams { hard_affinity: CpuMask::single(2), ..good },
                SchedError::EmptyHardAffinity,
            ),
            (VcpuParams { domain: 2, ..good }, SchedError::DomainMismatch),
        ];
        for (bad, error) in cases {
            assert_eq!(credit2.set_params(0, bad, 0), Err(error), "{bad:?}");
            if error != SchedError::DomainMismatch {
                assert_eq!(credit2.add_vcpu(5, bad, 0), Err(error), "{bad:?}");
            }
        }
        assert_eq!(credit2.set_params(7, good, 0), Err(SchedError::UnknownVcpu));
        assert_eq!(credit2.set_params(MAX_VCPUS, good, 0), Err(SchedError::UnknownVcpu));
        assert_eq!(credit2.add_vcpu(MAX_VCPUS, good, 0), Err(SchedError::VcpuOutOfRange));
        assert_eq!(credit2.add_vcpu(0, good, 0), Err(SchedError::VcpuExists));
        assert_eq!(
            credit2.add_vcpu(5, params(2, 256, 40), 0),
            Err(SchedError::InvalidCap),
            "domain 2 has cap 30"
        );
        assert_eq!(credit2.remove_vcpu(9), None);
        assert_eq!(credit2.sleep(9, 0), None);
        assert_eq!(credit2.wake(MAX_VCPUS + 1, 0), None);
        credit2.yield_now(9, 0);
        assert_eq!(credit2.schedule(2, 0), Decision::IDLE, "no such pCPU");
    });
}

#[test]
fn vcpu_ids_are_reusable_after_removal() {
    let mut credit2 = Credit2::new(1);
    credit2.add_vcpu(3, params(1, 256, 20), 0).unwrap();
    assert_eq!(credit2.remove_vcpu(3), None);
    credit2.add_vcpu(3, params(1, 256, 60), 0).expect("domain 1 left with its last vCPU");
    assert_eq!(credit2.domains.get(1).map(|domain| domain.cap), Some(60));
}

/// Checks the invariants of the module documentation that the simulator cannot see.
fn assert_invariants(credit2: &Credit2) {
    let queue = &*credit2.runq;
    let credit = |vcpu: VcpuId| credit2.unit(vcpu).credit;
    assert!(queue.windows(2).all(|pair| credit(pair[0]) >= credit(pair[1])), "sorted by credit");
    let mut heaviest = 1;
    for (vcpu, unit) in credit2.units.iter().enumerate() {
        let Some(unit) = unit else {
            assert!(!queue.contains(&vcpu));
            continue;
        };
        heaviest = heaviest.max(u32::from(unit.weight));
        assert_eq!(unit.on_runq, queue.contains(&vcpu), "vCPU {vcpu}");
        let waiting = unit.awake && !unit.parked && unit.running_on.is_none();
        assert_eq!(unit.on_runq, waiting, "vCPU {vcpu} queued exactly when waiting: {unit:?}");
        if let Some(cpu) = unit.running_on {
            assert_eq!(credit2.current[cpu], Some(vcpu));
            assert!(unit.hard.contains(cpu) || credit2.tickled.contains(cpu));
        }
        assert!(unit.credit >= CREDIT_MIN);
        let domain = credit2.domains.get(unit.domain).expect("a record per domain");
        assert_eq!(unit.budget.is_some(), domain.cap != 0, "vCPU {vcpu} budget follows the cap");
    }
    for cpu in 0..credit2.cpus {
        if let Some(vcpu) = credit2.current[cpu] {
            assert_eq!(credit2.unit(vcpu).running_on, Some(cpu));
        }
    }
    assert_eq!(credit2.max_weight, heaviest);
}

/// A small deterministic pseudo-random generator (a linear congruential one).
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[test]
fn random_operations_keep_the_invariants() {
    // Random adds, removals, parameter changes and loads; the simulator checks every decision
    // (and, without caps, work conservation), and the internal invariants are checked between.
    for seed in 0..24 {
        let capped = seed % 2 == 1;
        let cpus = 1 + (seed as usize / 2) % 4;
        let mut random = Random(seed);
        let mut credit2 = Credit2::new(cpus);
        let mut sim = Sim::new(&mut credit2, cpus);
        sim.check_work_conserving = !capped;
        let mut caps = [0u16; 4];
        let mut members = [0usize; 4];
        let mut present = [false; 12];
        for _ in 0..150 {
            let vcpu = random.below(12) as usize;
            let domain = vcpu % 4;
            let mut vcpu_params = VcpuParams {
                weight: [1, 128, 256, 512, 65535][random.below(5) as usize],
                cap: caps[domain],
                hard_affinity: CpuMask::from_bits(
                    random.below(1 << cpus) | 1 << random.below(cpus as u64),
                ),
                soft_affinity: CpuMask::from_bits(random.below(1 << cpus)),
                domain: domain as u16,
            };
            match (present[vcpu], random.below(3)) {
                (false, _) => {
                    let load = match random.below(3) {
                        0 => Load::Busy,
                        1 => Load::Bursty {
                            burst: random.below(3 * MILLIS) + 1,
                            sleep: random.below(5 * MILLIS) + 1,
                        },
                        _ => Load::BusyUntil(sim.now + random.below(50 * MILLIS)),
                    };
                    sim.add(vcpu, vcpu_params, load);
                    (present[vcpu], members[domain]) = (true, members[domain] + 1);
                }
                (true, 0) => {
                    sim.remove(vcpu);
                    (present[vcpu], members[domain]) = (false, members[domain] - 1);
                    if members[domain] == 0 {
                        caps[domain] = 0;
                    }
                }
                (true, _) => {
                    if capped && random.below(2) == 0 {
                        caps[domain] =
                            [0, 5, 30, 100, 150][random.below(5) as usize].min(100 * cpus as u16);
                        vcpu_params.cap = caps[domain];
                    }
                    sim.set_params(vcpu, vcpu_params);
                }
            }
            assert_invariants(sim.sched);
            sim.run_until(sim.now + random.below(20 * MILLIS));
            assert_invariants(sim.sched);
        }
        println!(
            "credit2 random seed {seed}: {} decisions over {} ms",
            sim.decisions,
            sim.now / MILLIS
        );
    }
}
