//! A deterministic discrete-event simulator that drives a [`Scheduler`] as the core does, for the
//! host tests of both policies.
//!
//! It keeps simulated pCPUs and vCPUs with a load pattern (always busy, or bursts of CPU time
//! between sleeps), calls `schedule` whenever a pCPU's timer expires, it is kicked, or its vCPU
//! blocks, calls `wake` and `sleep` as loads change, and charges time to whatever each pCPU runs.
//! All kicks at one instant are handled before time moves on, as IPIs would be.
//!
//! # Invariants (checked on every decision; a violation panics)
//! - A decision names a vCPU that is awake, within its hard affinity, and run by no other pCPU.
//! - A decision asks for a timer strictly in the future, if any.
//! - Kicks settle: one instant sees at most a bounded number of `schedule` calls.
//! - With `check_work_conserving`: once kicks settle, no pCPU idles while an awake vCPU that may
//!   run there waits.

use super::{Cpu, CpuMask, Decision, Nanos, Scheduler, VcpuId, VcpuParams, MAX_PCPUS, MAX_VCPUS};

pub const MICROS: Nanos = 1_000;
pub const MILLIS: Nanos = 1_000_000;
pub const SECONDS: Nanos = 1_000_000_000;

/// How a simulated vCPU behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Always wants to run.
    Busy,
    /// Runs `burst` of CPU time, then blocks for `sleep` of wall time, forever.
    Bursty { burst: Nanos, sleep: Nanos },
    /// Busy until the given time, then blocked for good.
    BusyUntil(Nanos),
}

/// What a simulated vCPU received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// CPU time, in total and per pCPU.
    pub ran: Nanos,
    pub ran_on: [Nanos; MAX_PCPUS],
    /// Times it woke, and the longest wait from waking to running.
    pub wakes: u64,
    pub max_latency: Nanos,
}

#[derive(Clone, Copy, Debug)]
struct Vcpu {
    load: Load,
    hard: CpuMask,
    /// `Some(wake time)` while blocked and due to wake; `None` when runnable.
    blocked_until: Option<Option<Nanos>>,
    /// CPU time left in the current burst.
    left: Nanos,
    /// When it woke, until it first runs.
    woke_at: Option<Nanos>,
    stats: Stats,
}

impl Vcpu {
    fn awake(&self) -> bool {
        self.blocked_until.is_none()
    }
}

pub struct Sim<'s, S: Scheduler + ?Sized> {
    pub sched: &'s mut S,
    pub now: Nanos,
    cpus: usize,
    vcpus: [Option<Vcpu>; MAX_VCPUS],
    running: [Option<VcpuId>; MAX_PCPUS],
    timer: [Option<Nanos>; MAX_PCPUS],
    kicked: CpuMask,
    /// Busy time per pCPU.
    pub busy: [Nanos; MAX_PCPUS],
    /// Number of `schedule` calls.
    pub decisions: u64,
    /// Whether a decision ever asked for a timer.
    pub timers_used: bool,
    pub check_work_conserving: bool,
}

impl<'s, S: Scheduler + ?Sized> Sim<'s, S> {
    pub fn new(sched: &'s mut S, cpus: usize) -> Self {
        Self {
            sched,
            now: 0,
            cpus,
            vcpus: [None; MAX_VCPUS],
            running: [None; MAX_PCPUS],
            timer: [None; MAX_PCPUS],
            kicked: CpuMask::EMPTY,
            busy: [0; MAX_PCPUS],
            decisions: 0,
            timers_used: false,
            check_work_conserving: false,
        }
    }

    /// Adds `vcpu`, wakes it, and lets the kicked pCPUs react.
    pub fn add(&mut self, vcpu: VcpuId, params: VcpuParams, load: Load) {
        self.sched.add_vcpu(vcpu, params, self.now).expect("valid parameters");
        let left = match load {
            Load::Bursty { burst, .. } => burst,
            Load::Busy | Load::BusyUntil(_) => Nanos::MAX,
        };
        let stats = Stats::default();
        let hard = params.hard_affinity;
        self.vcpus[vcpu] =
            Some(Vcpu { load, hard, blocked_until: Some(None), left, woke_at: None, stats });
        self.wake(vcpu);
        self.settle();
    }

    /// Removes `vcpu` and lets the kicked pCPU react.
    pub fn remove(&mut self, vcpu: VcpuId) {
        self.vcpus[vcpu] = None;
        for cpu in 0..self.cpus {
            if self.running[cpu] == Some(vcpu) {
                self.running[cpu] = None;
            }
        }
        if let Some(cpu) = self.sched.remove_vcpu(vcpu) {
            self.kicked.insert(cpu);
        }
        self.settle();
    }

    /// Changes `vcpu`'s parameters and lets the kicked pCPUs react.
    pub fn set_params(&mut self, vcpu: VcpuId, params: VcpuParams) {
        let kick = self.sched.set_params(vcpu, params, self.now).expect("valid parameters");
        if let Some(entry) = self.vcpus[vcpu].as_mut() {
            entry.hard = params.hard_affinity;
        }
        self.kicked = self.kicked.or(kick);
        self.settle();
    }

    pub fn stats(&self, vcpu: VcpuId) -> Stats {
        self.vcpus[vcpu].map(|entry| entry.stats).unwrap_or_default()
    }

    pub fn running(&self, cpu: Cpu) -> Option<VcpuId> {
        self.running[cpu]
    }

    fn wake(&mut self, vcpu: VcpuId) {
        let Some(entry) = self.vcpus[vcpu].as_mut() else { return };
        entry.blocked_until = None;
        entry.woke_at = Some(self.now);
        entry.stats.wakes += 1;
        if let Load::Bursty { burst, .. } = entry.load {
            entry.left = burst;
        }
        if let Some(cpu) = self.sched.wake(vcpu, self.now) {
            self.kicked.insert(cpu);
        }
    }

    fn block(&mut self, vcpu: VcpuId, until: Option<Nanos>) {
        let Some(entry) = self.vcpus[vcpu].as_mut() else { return };
        entry.blocked_until = Some(until);
        entry.woke_at = None;
        if let Some(cpu) = self.sched.sleep(vcpu, self.now) {
            self.kicked.insert(cpu);
        }
    }

    /// When `vcpu` next changes state by itself, if ever.
    fn next_change(&self, vcpu: &Vcpu, running: bool) -> Option<Nanos> {
        match (vcpu.blocked_until, vcpu.load) {
            (Some(until), _) => until,
            (None, Load::BusyUntil(end)) => Some(end.max(self.now)),
            (None, Load::Bursty { .. }) if running => Some(self.now + vcpu.left),
            (None, _) => None,
        }
    }

    /// Runs the simulation to `end`.
    pub fn run_until(&mut self, end: Nanos) {
        self.settle();
        while self.now < end {
            let mut next = end;
            for cpu in 0..self.cpus {
                next = next.min(self.timer[cpu].unwrap_or(Nanos::MAX));
            }
            for (vcpu, entry) in self.vcpus.iter().enumerate() {
                let Some(entry) = entry else { continue };
                let running = self.running.contains(&Some(vcpu));
                next = next.min(self.next_change(entry, running).unwrap_or(Nanos::MAX));
            }
            self.advance(next);
            self.events();
            self.settle();
        }
    }

    fn advance(&mut self, to: Nanos) {
        let elapsed = to - self.now;
        for cpu in 0..self.cpus {
            let Some(vcpu) = self.running[cpu] else { continue };
            let entry = self.vcpus[vcpu].as_mut().expect("a running vCPU exists");
            entry.stats.ran += elapsed;
            entry.stats.ran_on[cpu] += elapsed;
            entry.left = entry.left.saturating_sub(elapsed);
            self.busy[cpu] += elapsed;
        }
        self.now = to;
    }

    fn events(&mut self) {
        for vcpu in 0..MAX_VCPUS {
            let Some(entry) = self.vcpus[vcpu] else { continue };
            let running = self.running.contains(&Some(vcpu));
            if self.next_change(&entry, running) != Some(self.now) {
                continue;
            }
            match (entry.blocked_until, entry.load) {
                (Some(_), _) => self.wake(vcpu),
                (None, Load::Bursty { sleep, .. }) => self.block(vcpu, Some(self.now + sleep)),
                (None, _) => self.block(vcpu, None),
            }
        }
        for cpu in 0..self.cpus {
            if self.timer[cpu].is_some_and(|at| at <= self.now) {
                self.kicked.insert(cpu);
            }
        }
    }

    /// Lets every kicked pCPU reschedule, until none is.
    fn settle(&mut self) {
        let mut calls = 0;
        while let Some(cpu) = self.kicked.first() {
            self.kicked.remove(cpu);
            calls += 1;
            assert!(calls <= 8 * MAX_PCPUS, "kicks do not settle at {}", self.now);
            let decision = self.sched.schedule(cpu, self.now);
            self.apply(cpu, decision);
        }
        if self.check_work_conserving {
            self.assert_work_conserving();
        }
    }

    fn apply(&mut self, cpu: Cpu, decision: Decision) {
        self.decisions += 1;
        if let Some(vcpu) = decision.vcpu {
            let entry = self.vcpus[vcpu].as_mut().expect("a decision names a held vCPU");
            assert!(entry.awake(), "pCPU {cpu} picked vCPU {vcpu}, asleep, at {}", self.now);
            assert!(
                entry.hard.contains(cpu),
                "pCPU {cpu} picked vCPU {vcpu} outside its hard affinity {:?}",
                entry.hard
            );
            if let Some(woke_at) = entry.woke_at.take() {
                entry.stats.max_latency = entry.stats.max_latency.max(self.now - woke_at);
            }
            for other in (0..self.cpus).filter(|&other| other != cpu) {
                assert_ne!(
                    self.running[other],
                    Some(vcpu),
                    "vCPU {vcpu} on pCPUs {cpu} and {other}"
                );
            }
        }
        assert_eq!(self.sched.current(cpu), decision.vcpu, "current() follows the decision");
        if let Some(run_for) = decision.run_for {
            assert!(run_for > 0, "a zero timer would spin");
            self.timers_used = true;
        }
        self.running[cpu] = decision.vcpu;
        self.timer[cpu] = decision.run_for.map(|run_for| self.now + run_for);
        self.kicked = self.kicked.or(decision.kick);
    }

    fn assert_work_conserving(&self) {
        for cpu in (0..self.cpus).filter(|&cpu| self.running[cpu].is_none()) {
            for (vcpu, entry) in self.vcpus.iter().enumerate() {
                let Some(entry) = entry else { continue };
                let waiting = entry.awake() && !self.running.contains(&Some(vcpu));
                assert!(
                    !(waiting && entry.hard.contains(cpu)),
                    "pCPU {cpu} idles while vCPU {vcpu} waits, at {}",
                    self.now
                );
            }
        }
    }
}

/// Parameters for a vCPU of `domain` with `weight` and `cap`, on any pCPU.
pub fn params(domain: u16, weight: u16, cap: u16) -> VcpuParams {
    VcpuParams { weight, cap, ..VcpuParams::new(domain) }
}

/// `part` as a percentage of `whole`.
pub fn percent(part: Nanos, whole: Nanos) -> f64 {
    part as f64 * 100.0 / whole as f64
}
