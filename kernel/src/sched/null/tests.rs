//! Host tests of the null scheduler, by simulation (`sched::simulation`) and directly.
//!
//! # Invariants
//! - Deterministic: fixed inputs and seeds, simulated time only; a failure reproduces exactly.

use super::super::simulation::{Load, Sim, SECONDS};
use super::*;

impl Null {
    /// The pCPU `vcpu` is assigned to, if any.
    fn assigned_cpu(&self, vcpu: VcpuId) -> Option<Cpu> {
        self.vcpus.get(vcpu)?.as_ref()?.cpu
    }

    /// The vCPUs waiting for a pCPU, oldest first.
    fn waiting(&self) -> &[VcpuId] {
        &self.waitq
    }
}

fn with_affinity(domain: u16, hard: CpuMask, soft: CpuMask) -> VcpuParams {
    VcpuParams { hard_affinity: hard, soft_affinity: soft, ..VcpuParams::new(domain) }
}

#[test]
fn one_vcpu_per_pcpu_exclusively_without_timers() {
    let mut null = Null::new(4);
    let mut sim = Sim::new(&mut null, 4);
    sim.check_work_conserving = true;
    for vcpu in 0..4 {
        sim.add(vcpu, VcpuParams::new(vcpu as u16), Load::Busy);
    }
    sim.run_until(10 * SECONDS);
    let mut owners = [None; 4];
    for vcpu in 0..4 {
        let stats = sim.stats(vcpu);
        assert_eq!(stats.ran, 10 * SECONDS, "vCPU {vcpu} had its pCPU all the time");
        let cpu = stats.ran_on.iter().position(|&ran| ran > 0).unwrap();
        assert_eq!(stats.ran_on[cpu], stats.ran, "vCPU {vcpu} never moved");
        assert_eq!(owners[cpu].replace(vcpu), None, "pCPU {cpu} shared");
    }
    assert!(!sim.timers_used, "null never time-slices");
    assert_eq!(sim.decisions, 4, "one decision per pCPU, then nothing to do");
}

#[test]
fn extra_vcpus_wait_and_get_a_pcpu_when_one_is_removed() {
    let mut null = Null::new(2);
    let mut sim = Sim::new(&mut null, 2);
    for vcpu in 0..4 {
        sim.add(vcpu, VcpuParams::new(1), Load::Busy);
    }
    sim.run_until(SECONDS);
    assert_eq!([0, 1, 2, 3].map(|vcpu| sim.stats(vcpu).ran), [SECONDS, SECONDS, 0, 0]);
    sim.remove(0);
    assert_eq!(sim.running(0), Some(2), "the oldest waiter takes the freed pCPU");
    sim.run_until(2 * SECONDS);
    assert_eq!([1, 2, 3].map(|vcpu| sim.stats(vcpu).ran), [2 * SECONDS, SECONDS, 0]);
    sim.remove(1);
    sim.run_until(3 * SECONDS);
    assert_eq!(sim.stats(3).ran, SECONDS);
}

#[test]
fn placement_follows_hard_then_soft_affinity() {
    let mut null = Null::new(4);
    let all = CpuMask::all(4);
    null.add_vcpu(0, with_affinity(1, CpuMask::single(2), all), 0).unwrap();
    null.add_vcpu(1, with_affinity(1, all, CpuMask::single(3)), 0).unwrap();
    null.add_vcpu(2, with_affinity(1, all, CpuMask::single(3)), 0).unwrap();
    null.add_vcpu(3, with_affinity(1, CpuMask::single(2), all), 0).unwrap();
    assert_eq!(null.assigned_cpu(0), Some(2), "hard affinity");
    assert_eq!(null.assigned_cpu(1), Some(3), "soft affinity");
    assert_eq!(null.assigned_cpu(2), Some(0), "soft taken: any free pCPU in the hard affinity");
    assert_eq!(null.assigned_cpu(3), None, "its only pCPU is taken");
    assert_eq!(null.waiting(), [3]);
    null.add_vcpu(4, with_affinity(1, all, CpuMask::single(2)), 0).unwrap();
    null.add_vcpu(5, with_affinity(1, all, all), 0).unwrap();
    assert_eq!(null.assigned_cpu(4), Some(1));
    assert_eq!(null.assigned_cpu(5), None);
    null.add_vcpu(6, with_affinity(1, all, CpuMask::single(2)), 0).unwrap();
    assert_eq!(null.waiting(), [3, 5, 6]);
    // Freeing pCPU 2: vCPU 3 (hard) and 6 (soft) want it; soft is asked first, as in Xen.
    assert_eq!(null.remove_vcpu(0), Some(2));
    assert_eq!(null.assigned_cpu(6), Some(2));
    assert_eq!(null.waiting(), [3, 5]);
}

#[test]
fn a_blocked_vcpu_keeps_its_pcpu_idle() {
    let mut null = Null::new(1);
    let mut sim = Sim::new(&mut null, 1);
    sim.add(0, VcpuParams::new(1), Load::BusyUntil(SECONDS));
    sim.add(1, VcpuParams::new(2), Load::Busy);
    sim.run_until(3 * SECONDS);
    assert_eq!((sim.stats(0).ran, sim.stats(1).ran), (SECONDS, 0), "the waiter never runs");
    assert_eq!(sim.busy[0], SECONDS);
}

#[test]
fn wake_and_sleep_kick_the_assigned_pcpu() {
    let mut null = Null::new(2);
    null.add_vcpu(0, VcpuParams::new(1), 0).unwrap();
    assert_eq!(null.wake(0, 0), Some(0));
    assert_eq!(
        null.schedule(0, 0),
        Decision { vcpu: Some(0), run_for: None, kick: CpuMask::EMPTY }
    );
    assert_eq!(null.wake(0, 1), None, "running already");
    assert_eq!(null.sleep(0, 2), Some(0));
    assert_eq!(null.schedule(0, 2), Decision::IDLE);
    assert_eq!(null.sleep(0, 3), None);
    null.yield_now(0, 4);
    assert_eq!(null.schedule(1, 5), Decision::IDLE);
    assert_eq!(null.schedule(7, 5), Decision::IDLE, "no such pCPU");
}

#[test]
fn affinity_change_moves_the_vcpu_and_frees_its_pcpu() {
    let mut null = Null::new(2);
    let mut sim = Sim::new(&mut null, 2);
    sim.add(0, with_affinity(1, CpuMask::single(0), CpuMask::EMPTY), Load::Busy);
    sim.add(1, with_affinity(2, CpuMask::single(1), CpuMask::EMPTY), Load::Busy);
    sim.add(2, with_affinity(3, CpuMask::single(0), CpuMask::EMPTY), Load::Busy);
    sim.run_until(SECONDS);
    // vCPU 0 may now only use pCPU 1, which vCPU 1 holds: it waits, and vCPU 2 gets pCPU 0.
    sim.set_params(0, with_affinity(1, CpuMask::single(1), CpuMask::EMPTY));
    assert_eq!((sim.running(0), sim.running(1)), (Some(2), Some(1)));
    // Widening the affinity of vCPU 0 gives it nothing while both pCPUs are held.
    sim.set_params(0, with_affinity(1, CpuMask::all(2), CpuMask::EMPTY));
    sim.remove(1);
    assert_eq!(sim.running(1), Some(0));
    sim.run_until(2 * SECONDS);
    assert_eq!(sim.stats(0).ran_on[..2], [SECONDS, SECONDS]);
    assert_eq!(sim.stats(2).ran, SECONDS);
}

#[test]
fn invalid_params_are_refused_and_change_nothing() {
    let mut null = Null::new(2);
    null.add_vcpu(0, VcpuParams::new(1), 0).unwrap();
    null.add_vcpu(1, VcpuParams::new(1), 0).unwrap();
    null.add_vcpu(2, VcpuParams::new(1), 0).unwrap();
    let good = VcpuParams::new(1);
    let cases = [
        (VcpuParams { weight: 0, ..good }, SchedError::InvalidWeight),
        (VcpuParams { cap: 201, ..good }, SchedError::InvalidCap),
        (VcpuParams { hard_affinity: CpuMask::EMPTY, ..good }, SchedError::EmptyHardAffinity),
        (VcpuParams { hard_affinity: CpuMask::single(5), ..good }, SchedError::EmptyHardAffinity),
    ];
    for (bad, error) in cases {
        assert_eq!(null.set_params(0, bad, 0), Err(error), "{bad:?}");
        assert_eq!(null.add_vcpu(5, bad, 0), Err(error), "{bad:?}");
    }
    let moved = VcpuParams { domain: 2, hard_affinity: CpuMask::single(1), ..good };
    assert_eq!(null.set_params(0, moved, 0), Err(SchedError::DomainMismatch));
    assert_eq!(null.set_params(9, good, 0), Err(SchedError::UnknownVcpu));
    assert_eq!(null.set_params(MAX_VCPUS, good, 0), Err(SchedError::UnknownVcpu));
    assert_eq!(null.add_vcpu(MAX_VCPUS, good, 0), Err(SchedError::VcpuOutOfRange));
    assert_eq!(null.add_vcpu(1, good, 0), Err(SchedError::VcpuExists));
    assert_eq!(null.remove_vcpu(9), None);
    assert_eq!(
        (null.assigned_cpu(0), null.assigned_cpu(1), null.assigned_cpu(2)),
        (Some(0), Some(1), None)
    );
    assert_eq!(null.waiting(), [2]);
    assert!(null.vcpus[5].is_none());
}

/// Checks the invariants of the module documentation.
fn assert_invariants(null: &Null) {
    let waiting = null.waiting();
    for (vcpu, entry) in null.vcpus.iter().enumerate() {
        let Some(entry) = entry else {
            assert!(!waiting.contains(&vcpu));
            continue;
        };
        match entry.cpu {
            Some(cpu) => {
                assert_eq!(null.assigned[cpu], Some(vcpu));
                assert!(entry.hard.contains(cpu) && !waiting.contains(&vcpu));
            }
            None => {
                assert_eq!(waiting.iter().filter(|&&other| other == vcpu).count(), 1);
                assert!(null.free().and(entry.hard).is_empty(), "vCPU {vcpu} waits by a free pCPU");
            }
        }
    }
    for cpu in 0..null.cpus {
        assert!(null.current[cpu].is_none() || null.current[cpu] == null.assigned[cpu]);
    }
}

#[test]
fn random_operations_keep_the_invariants() {
    let mut state: u64 = 7;
    let mut below = |bound: u64| {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound
    };
    let mut null = Null::new(3);
    let mut sim = Sim::new(&mut null, 3);
    let mut present = [false; 8];
    for _ in 0..400 {
        let vcpu = below(8) as usize;
        let hard = CpuMask::from_bits(below(8) | 1 << below(3));
        let vcpu_params = with_affinity(1, hard, CpuMask::from_bits(below(8)));
        match (present[vcpu], below(2)) {
            (false, _) => {
                let load = if below(2) == 0 {
                    Load::Busy
                } else {
                    Load::BusyUntil(sim.now + below(SECONDS))
                };
                sim.add(vcpu, vcpu_params, load);
                present[vcpu] = true;
            }
            (true, 0) => {
                sim.remove(vcpu);
                present[vcpu] = false;
            }
            (true, _) => sim.set_params(vcpu, vcpu_params),
        }
        assert_invariants(sim.sched);
        sim.run_until(sim.now + below(SECONDS / 10));
        assert_invariants(sim.sched);
    }
    assert!(!sim.timers_used);
}
