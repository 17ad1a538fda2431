//! credit2, the default scheduler: CPU time in proportion to weight, with caps and affinity,
//! after Xen's `xen/common/sched/credit2.c` (semantics re-implemented, not code).
//!
//! Every vCPU holds *credit*, nanoseconds it may still run in this epoch. Running burns it at
//! `max_weight / weight` credits per nanosecond, so a vCPU of twice the weight burns half as
//! fast and runs twice as long. Runnable vCPUs wait in one queue sorted by credit; a pCPU runs the
//! one with most credit that its hard affinity allows, for a timeslice that would bring its credit
//! down to the next one's (500 us to 10 ms, and at least the 1 ms rate limit). When the best vCPU
//! that could run has no credit left the epoch ends: everyone gets [`CREDIT_INIT`] more, clipped
//! to a small carry-over. A waking vCPU goes to an idle pCPU (in its soft affinity first) or
//! preempts the running vCPU with the least credit. Caps are in the `budget` submodule.
//!
//! One run queue for all pCPUs: Xen's default groups pCPUs into one run queue per socket, up to
//! 16 pCPUs each, and this scheduler holds at most [`MAX_PCPUS`] = 16 pCPUs, so on the boards we
//! target Xen would build exactly one queue too. Credit is then compared across every pCPU, and no
//! load balancer is needed (Xen's balances between queues only).
//!
//! Other differences from Xen, each to keep a guarantee Xen's code only approaches: a pCPU still
//! within the rate limit is tickled too (wake-up latency is bounded by the rate limit, not by a
//! timeslice); an idle pCPU ignores migration resistance, and a tickled pCPU that leaves its vCPU
//! queued passes the tickle to an idle one (no pCPU idles while a vCPU it may run waits); cap
//! refills are lazy (see the `budget` submodule). Not modelled: SMT siblings, load averages,
//! tasklets.
//!
//! # Invariants
//! - `current[c] == Some(v)` exactly when `units[v].running_on == Some(c)`.
//! - The run queue holds, in non-increasing credit order, exactly the vCPUs that are awake, not
//!   parked and not running; `on_runq` says so.
//! - A capped vCPU has `budget: Some(_)`; a running one has a positive budget when it starts.
//! - While a vCPU is parked, every pCPU of its hard affinity that scheduled since (the one that
//!   parked it, at least) has its timer at the vCPU's domain's next refill at the latest.
//! - `credit >= CREDIT_MIN` for every vCPU; `max_weight` is the largest weight held (1 if none).

mod budget;
#[cfg(test)]
mod tests;

use budget::Domains;
pub use budget::CAP_PERIOD;

use super::{
    Cpu, CpuMask, Decision, DomainId, Nanos, SchedError, Scheduler, VcpuId, VcpuParams, VcpuQueue,
    MAX_PCPUS, MAX_VCPUS, XEN_SCHEDULER_CREDIT2,
};

/// Shortest timeslice (`CSCHED2_MIN_TIMER`).
pub const MIN_TIMER: Nanos = 500_000;
/// Credit at start and added at each reset (`CSCHED2_CREDIT_INIT`); also the longest timeslice.
pub const CREDIT_INIT: i64 = 10_000_000;
/// Longest timeslice (`CSCHED2_MAX_TIMER`).
pub const MAX_TIMER: Nanos = CREDIT_INIT as Nanos;
/// A vCPU runs at least this long before a better one may preempt it (Xen's `sched_ratelimit_us`
/// default, 1000).
pub const RATELIMIT: Nanos = 1_000_000;
/// Lowest credit tracked (`CSCHED2_CREDIT_MIN`).
const CREDIT_MIN: i64 = -CREDIT_INIT;
/// What an idle pCPU compares with: below any vCPU (`CSCHED2_IDLE_CREDIT`).
const IDLE_CREDIT: i64 = CREDIT_MIN - 1;
/// Credit kept over a reset beyond [`CREDIT_INIT`] (`CSCHED2_CARRYOVER_MAX`).
const CARRYOVER_MAX: i64 = MIN_TIMER as i64;
/// Credit a vCPU needs beyond the running one to be pulled from another pCPU
/// (`CSCHED2_MIGRATE_RESIST`, `sched_credit2_migrate_resist=500`).
const MIGRATE_RESIST: i64 = 500_000;
/// Credit given to a vCPU that moves pCPU, for its cold cache (`CSCHED2_MIGRATE_COMPENSATION`).
const MIGRATE_COMPENSATION: i64 = 50_000;
/// The epoch ends when the best candidate's credit is at or below this (`CSCHED2_CREDIT_RESET`).
const CREDIT_RESET: i64 = 0;

/// One vCPU (Xen's `csched2_unit`).
#[derive(Clone, Copy, Debug, Default)]
struct Unit {
    domain: DomainId,
    weight: u16,
    hard: CpuMask,
    /// The soft affinity that matters: within `hard`, narrower than it; else empty.
    soft: CpuMask,
    credit: i64,
    /// Remainder of the last time-to-credit division, carried so short runs add up.
    residual: u64,
    /// Run time left from the domain's pool; `None` when the domain has no cap.
    budget: Option<i64>,
    /// When credit was last burnt (while running).
    start_time: Nanos,
    /// The pCPU it last ran on (or was placed on).
    processor: Cpu,
    /// The pCPU kicked to pick it up, while it waits.
    tickled_cpu: Option<Cpu>,
    awake: bool,
    parked: bool,
    yielding: bool,
    on_runq: bool,
    running_on: Option<Cpu>,
}

impl Unit {
    /// Runnable as far as the scheduler is concerned (Xen's `unit_runnable_state`).
    fn runnable(&self) -> bool {
        self.awake && !self.parked
    }
}

/// The credit2 scheduler over `cpus` pCPUs.
pub struct Credit2 {
    cpus: usize,
    units: [Option<Unit>; MAX_VCPUS],
    /// Waiting vCPUs, most credit first; equal credit in arrival order.
    runq: VcpuQueue,
    /// What each pCPU runs.
    current: [Option<VcpuId>; MAX_PCPUS],
    /// When `current` started running (Xen's `state_entry_time`), for the rate limit.
    since: [Nanos; MAX_PCPUS],
    /// pCPUs kicked that have not rescheduled yet: busy for placement purposes.
    tickled: CpuMask,
    max_weight: u32,
    domains: Domains,
}

impl Credit2 {
    /// A scheduler over pCPUs `0..cpus`.
    ///
    /// # Panics
    /// If `cpus` is 0 or above [`MAX_PCPUS`] (the platform never reports such a count).
    pub fn new(cpus: usize) -> Self {
        assert!((1..=MAX_PCPUS).contains(&cpus), "credit2 over {cpus} pCPUs");
        Self {
            cpus,
            units: [None; MAX_VCPUS],
            runq: VcpuQueue::EMPTY,
            current: [None; MAX_PCPUS],
            since: [0; MAX_PCPUS],
            tickled: CpuMask::EMPTY,
            max_weight: 1,
            domains: Domains::new(),
        }
    }

    fn unit(&self, vcpu: VcpuId) -> &Unit {
        self.units[vcpu].as_ref().expect("credit2: a queued or running vCPU exists")
    }

    fn unit_mut(&mut self, vcpu: VcpuId) -> &mut Unit {
        self.units[vcpu].as_mut().expect("credit2: a queued or running vCPU exists")
    }

    /// `vcpu`, if the scheduler holds it.
    fn held(&self, vcpu: VcpuId) -> Option<Unit> {
        self.units.get(vcpu).copied().flatten()
    }

    /// pCPUs running nothing (and not about to, which `tickled` says).
    fn idle(&self) -> CpuMask {
        (0..self.cpus).filter(|&cpu| self.current[cpu].is_none()).collect()
    }

    fn update_max_weight(&mut self) {
        let heaviest = self.units.iter().flatten().map(|unit| u32::from(unit.weight)).max();
        self.max_weight = heaviest.unwrap_or(1);
    }

    // --- The run queue -------------------------------------------------------------------------

    fn runq_insert(&mut self, vcpu: VcpuId) {
        let credit = self.unit(vcpu).credit;
        let position = self.runq.iter().position(|&other| credit > self.unit(other).credit);
        self.runq.insert(position.unwrap_or(self.runq.len()), vcpu);
        let unit = self.unit_mut(vcpu);
        unit.on_runq = true;
        unit.tickled_cpu = None;
    }

    /// Takes `vcpu` out of the queue, if it is there.
    fn runq_remove(&mut self, vcpu: VcpuId) {
        self.runq.remove(vcpu);
        self.unit_mut(vcpu).on_runq = false;
    }

    fn runq_head_credit(&self) -> Option<i64> {
        self.runq.first().map(|&vcpu| self.unit(vcpu).credit)
    }

    // --- Credit ---------------------------------------------------------------------------------

    /// Charges a running vCPU for the time since `start_time` (Xen's `burn_credits`/`t2c_update`).
    fn burn(&mut self, vcpu: VcpuId, now: Nanos) {
        let max_weight = u128::from(self.max_weight);
        let unit = self.unit_mut(vcpu);
        let delta = now.saturating_sub(unit.start_time);
        if delta == 0 {
            return;
        }
        let scaled = u128::from(delta) * max_weight + u128::from(unit.residual);
        let weight = u128::from(unit.weight);
        unit.residual = (scaled % weight) as u64;
        let burnt = i64::try_from(scaled / weight).unwrap_or(i64::MAX);
        unit.credit = unit.credit.saturating_sub(burnt).max(CREDIT_MIN);
        if let Some(budget) = unit.budget.as_mut() {
            *budget = budget.saturating_sub(delta as i64);
        }
        unit.start_time = now;
    }

    /// Credit to run time for `vcpu` (Xen's `c2t`).
    fn credit_to_time(&self, credit: i64, vcpu: VcpuId) -> Nanos {
        let time =
            i128::from(credit) * i128::from(self.unit(vcpu).weight) / i128::from(self.max_weight);
        u64::try_from(time).unwrap_or(0)
    }

    /// Ends the epoch: everyone gets [`CREDIT_INIT`] more, clipped (Xen's `reset_credit`). A
    /// running capped vCPU found out of budget gets its pCPU kicked.
    fn reset_credit(&mut self, now: Nanos, next: VcpuId, kick: &mut CpuMask) {
        let reset =
            if self.unit(next).credit == CREDIT_MIN { 2 * CREDIT_INIT } else { CREDIT_INIT };
        for vcpu in 0..MAX_VCPUS {
            let Some(unit) = self.units[vcpu] else { continue };
            if let Some(cpu) = unit.running_on {
                self.burn(vcpu, now);
                if self.unit(vcpu).budget.is_some_and(|budget| budget <= 0) {
                    self.tickled.insert(cpu);
                    kick.insert(cpu);
                }
            }
            let unit = self.unit_mut(vcpu);
            unit.credit = (unit.credit + reset).min(CREDIT_INIT + CARRYOVER_MAX);
            unit.start_time = now;
        }
    }

    // --- Caps -----------------------------------------------------------------------------------

    /// Gets `vcpu` budget from its domain's pool if it has none left; parks it when the pool is
    /// empty. Returns whether it may run (Xen's `unit_grab_budget`).
    fn grab_budget(&mut self, vcpu: VcpuId) -> bool {
        let unit = *self.unit(vcpu);
        let Some(left) = unit.budget.filter(|&left| left <= 0) else { return true };
        let granted = self.domains.get_mut(unit.domain).map_or(0, |domain| domain.grab(left));
        self.unit_mut(vcpu).budget = Some(granted);
        if granted <= 0 {
            self.unit_mut(vcpu).parked = true;
            self.runq_remove(vcpu);
        }
        granted > 0
    }

    /// `vcpu` stopped running: its unused budget goes back to the pool, which may unpark its
    /// domain's other vCPUs (Xen's `unit_return_budget`).
    fn return_budget(&mut self, vcpu: VcpuId, unparked: &mut VcpuQueue) {
        let unit = self.unit_mut(vcpu);
        let Some(left) = unit.budget.filter(|&left| left > 0) else { return };
        let domain = unit.domain;
        unit.budget = Some(0);
        if self.domains.get_mut(domain).is_some_and(|record| record.give_back(left)) {
            self.unpark_domain(domain, unparked);
        }
    }

    fn unpark_domain(&mut self, domain: DomainId, unparked: &mut VcpuQueue) {
        for vcpu in 0..MAX_VCPUS {
            let unit = self.units[vcpu].as_mut().filter(|unit| unit.domain == domain);
            let Some(unit) = unit.filter(|unit| unit.parked) else { continue };
            unit.parked = false;
            if unit.awake && unit.running_on.is_none() && !unit.on_runq {
                self.runq_insert(vcpu);
                unparked.push(vcpu);
            }
        }
    }

    /// Applies every cap refill due by `now` and unparks what it can.
    fn refill(&mut self, now: Nanos, unparked: &mut VcpuQueue) {
        for record in 0..MAX_VCPUS {
            if let Some(domain) = self.domains.refill(record, now) {
                self.unpark_domain(domain, unparked);
            }
        }
    }

    /// The earliest refill that may unpark a vCPU allowed on `cpu`.
    fn refill_deadline(&self, cpu: Cpu) -> Option<Nanos> {
        let parked =
            self.units.iter().flatten().filter(|unit| unit.parked && unit.hard.contains(cpu));
        parked.filter_map(|unit| Some(self.domains.get(unit.domain)?.next_refill)).min()
    }

    /// Turns domain `domain`'s cap to `cap` for all its vCPUs (Xen's `csched2_dom_cntl` putinfo).
    fn set_cap(&mut self, domain: DomainId, cap: u16, now: Nanos, kick: &mut CpuMask) {
        let Some(old) = self.domains.get(domain).map(|record| record.cap) else { return };
        if old == cap {
            return;
        }
        let mut unparked = VcpuQueue::EMPTY;
        for vcpu in 0..MAX_VCPUS {
            let Some(unit) = self.units[vcpu].filter(|unit| unit.domain == domain) else {
                continue;
            };
            if cap == 0 {
                self.unit_mut(vcpu).budget = None;
            } else if old == 0 {
                if let Some(cpu) = unit.running_on {
                    // Charge the run so far before the budget counts, and make it grab some.
                    self.burn(vcpu, now);
                    self.tickled.insert(cpu);
                    kick.insert(cpu);
                }
                self.unit_mut(vcpu).budget = Some(0);
            }
        }
        if let Some(record) = self.domains.get_mut(domain) {
            record.set_cap(cap, now);
        }
        if cap == 0 {
            self.unpark_domain(domain, &mut unparked);
        }
        for &vcpu in unparked.iter() {
            kick.extend(self.tickle(vcpu, now, CpuMask::EMPTY, true));
        }
    }

    // --- Placement ------------------------------------------------------------------------------

    /// How much `new` should replace what `cpu` runs: negative if not at all; else the credit
    /// difference plus bonuses for soft affinity (Xen's `tickle_score`).
    fn tickle_score(&mut self, new: VcpuId, cpu: Cpu, now: Nanos) -> i64 {
        let Some(current) = self.current[cpu] else { return -1 };
        self.burn(current, now);
        let (new, current) = (*self.unit(new), *self.unit(current));
        let mut score = new.credit - current.credit;
        if new.processor != cpu {
            score -= MIGRATE_RESIST;
        }
        if score > 0 {
            if new.soft.contains(cpu) {
                score += CREDIT_INIT;
            }
            if !current.soft.is_empty() && !current.soft.contains(cpu) {
                score += CREDIT_INIT;
            }
        }
        score
    }

    /// Picks the pCPU that should pick up queued `vcpu` and marks it tickled (Xen's
    /// `runq_tickle`): an idle pCPU in its soft, then hard affinity, nearest its last pCPU; else,
    /// if `preempt`, the busy pCPU it has most right to preempt. `exclude` holds the pCPU deciding,
    /// if any.
    fn tickle(&mut self, vcpu: VcpuId, now: Nanos, exclude: CpuMask, preempt: bool) -> Option<Cpu> {
        let unit = *self.unit(vcpu);
        let allowed = unit.hard.and_not(exclude);
        let free = self.idle().and_not(self.tickled).and(allowed);
        let mut target = [unit.soft, unit.hard]
            .into_iter()
            .find_map(|step| step.and(free).cycle_from(unit.processor));
        if target.is_none() && preempt {
            // Unlike Xen, a pCPU whose vCPU is still within the rate limit is tickled too: it
            // re-arms its timer for the end of the rate limit, bounding the wake-up latency by it.
            let busy = allowed.and_not(self.idle()).and_not(self.tickled);
            let last = CpuMask::single(unit.processor);
            let mut best = 0;
            // Its last pCPU first: in its soft affinity, it needs no migration, so if it is any
            // good, take it.
            for cpu in busy.and(last).iter().chain(busy.and_not(last).iter()) {
                if target == Some(unit.processor) && unit.soft.contains(unit.processor) {
                    break;
                }
                let score = self.tickle_score(vcpu, cpu, now);
                if score > best {
                    (best, target) = (score, Some(cpu));
                }
            }
        }
        let cpu = target?;
        self.tickled.insert(cpu);
        self.unit_mut(vcpu).tickled_cpu = Some(cpu);
        Some(cpu)
    }

    /// What `cpu` should run instead of `current` (Xen's `runq_candidate`).
    fn candidate(&mut self, cpu: Cpu, current: Option<VcpuId>, now: Nanos) -> Option<VcpuId> {
        let mut yielding = false;
        let mut next = None;
        if let Some(vcpu) = current {
            let unit = self.unit_mut(vcpu);
            yielding = core::mem::take(&mut unit.yielding);
            let unit = *unit;
            let runnable = unit.runnable() && unit.hard.contains(cpu);
            let ran = now.saturating_sub(self.since[cpu]);
            if runnable && !yielding && ran < RATELIMIT {
                return Some(vcpu);
            }
            // Running outside its soft affinity while a pCPU inside it idles: let that one take it.
            let soft_idle = unit.soft.and(self.idle()).and_not(self.tickled);
            let soft_preempt =
                !unit.soft.is_empty() && !unit.soft.contains(cpu) && !soft_idle.is_empty();
            if runnable && !soft_preempt {
                next = Some(vcpu);
            }
        }
        let mut index = 0;
        while index < self.runq.len() {
            let vcpu = self.runq[index];
            index += 1;
            let unit = *self.unit(vcpu);
            let next_credit = next.map_or(IDLE_CREDIT, |next| self.unit(next).credit);
            if !yielding && unit.credit <= next_credit {
                break;
            }
            if !unit.hard.contains(cpu) {
                continue;
            }
            if unit.tickled_cpu.is_some_and(|other| other != cpu && self.tickled.contains(other)) {
                continue;
            }
            // Unlike Xen, an idle pCPU pulls regardless: resisting could leave it idle.
            if next.is_some() && unit.processor != cpu && next_credit + MIGRATE_RESIST > unit.credit
            {
                continue;
            }
            if !self.grab_budget(vcpu) {
                index -= 1; // parked: it left the queue
                continue;
            }
            return Some(vcpu);
        }
        next
    }

    /// How long `next` runs (Xen's `csched2_runtime`): until its credit meets the best waiter's
    /// (or the vCPU being put back), within its budget, between the minimum and maximum timeslice.
    fn runtime(&self, cpu: Cpu, next: VcpuId, inflight: Option<i64>, now: Nanos) -> Nanos {
        // The rest of the rate limit; all of it for a vCPU that starts now (`since` is now).
        let ratelimit = (self.since[cpu] + RATELIMIT).saturating_sub(now);
        let min_time = MIN_TIMER.max(ratelimit);
        let unit = self.unit(next);
        let waiting = self.runq_head_credit().filter(|&credit| credit > 0).unwrap_or(0);
        let waiting = waiting.max(inflight.unwrap_or(0));
        let credit = if waiting > 0 { unit.credit - waiting } else { unit.credit };
        let mut time = if credit > 0 { self.credit_to_time(credit, next) } else { 0 };
        if let Some(budget) = unit.budget {
            time = time.min(u64::try_from(budget).unwrap_or(0));
        }
        time.clamp(min_time, MAX_TIMER.max(min_time))
    }

    /// One pass of [`Scheduler::schedule`]. Work it puts back in the queue goes to other pCPUs, or,
    /// if `cpu` ends up idle, possibly to `cpu` itself: then `kick` names `cpu`.
    fn schedule_once(&mut self, cpu: Cpu, now: Nanos) -> Decision {
        let mut kick = CpuMask::EMPTY;
        let mut unparked = VcpuQueue::EMPTY;
        self.tickled.remove(cpu);
        self.refill(now, &mut unparked);

        let current = self.current[cpu];
        if let Some(vcpu) = current {
            self.burn(vcpu, now);
            self.grab_budget(vcpu);
        }
        let next = self.candidate(cpu, current, now);
        let mut requeue = None;
        if let Some(vcpu) = current.filter(|&vcpu| Some(vcpu) != next) {
            let unit = self.unit_mut(vcpu);
            unit.running_on = None;
            if unit.runnable() {
                requeue = Some(vcpu);
            }
            self.return_budget(vcpu, &mut unparked);
        }

        if let Some(vcpu) = next {
            if next != current {
                self.runq_remove(vcpu);
                let unit = self.unit_mut(vcpu);
                unit.running_on = Some(cpu);
                unit.start_time = now;
                self.since[cpu] = now;
            }
            let top = self
                .runq_head_credit()
                .map_or(self.unit(vcpu).credit, |head| head.max(self.unit(vcpu).credit));
            if top <= CREDIT_RESET {
                self.reset_credit(now, vcpu, &mut kick);
            }
            let unit = self.unit_mut(vcpu);
            unit.start_time = now;
            unit.tickled_cpu = None;
            if unit.processor != cpu {
                unit.credit += MIGRATE_COMPENSATION;
                unit.processor = cpu;
            }
        }
        self.current[cpu] = next;
        kick.remove(cpu);
        let inflight = requeue.map(|vcpu| self.unit(vcpu).credit);

        let mut run_for = next.map(|vcpu| self.runtime(cpu, vcpu, inflight, now));
        if let Some(deadline) = self.refill_deadline(cpu) {
            let until = deadline.saturating_sub(now).max(1);
            run_for = Some(run_for.map_or(until, |time| time.min(until)));
        }

        // Pass on the tickles this pCPU did not take, to idle pCPUs only (busy ones already
        // have timers), so that no pCPU idles while such a vCPU waits.
        for index in 0..self.runq.len() {
            let vcpu = self.runq[index];
            if self.unit(vcpu).tickled_cpu == Some(cpu) {
                self.unit_mut(vcpu).tickled_cpu = None;
                kick.extend(self.tickle(vcpu, now, CpuMask::single(cpu), false));
            }
        }
        // Place what this pass put back in the queue; an idle `cpu` may take it itself.
        let exclude = next.map_or(CpuMask::EMPTY, |_| CpuMask::single(cpu));
        if let Some(vcpu) = requeue {
            self.runq_insert(vcpu);
            kick.extend(self.tickle(vcpu, now, exclude, true));
        }
        for &vcpu in unparked.iter() {
            if self.unit(vcpu).on_runq {
                kick.extend(self.tickle(vcpu, now, exclude, true));
            }
        }
        Decision { vcpu: next, run_for, kick }
    }
}

impl Scheduler for Credit2 {
    fn id(&self) -> u32 {
        XEN_SCHEDULER_CREDIT2
    }

    fn name(&self) -> &'static str {
        "credit2"
    }

    fn add_vcpu(&mut self, vcpu: VcpuId, params: VcpuParams, now: Nanos) -> Result<(), SchedError> {
        params.check_add(vcpu, self.held(vcpu).is_some(), self.cpus)?;
        // A domain has one cap.
        if self.domains.get(params.domain).is_some_and(|domain| domain.cap != params.cap) {
            return Err(SchedError::InvalidCap);
        }
        self.domains.join(params.domain, params.cap, now);
        let (hard, soft) = params.masks(self.cpus);
        self.units[vcpu] = Some(Unit {
            domain: params.domain,
            weight: params.weight,
            hard,
            soft,
            credit: CREDIT_INIT,
            budget: (params.cap != 0).then_some(0),
            start_time: now,
            processor: soft.first().or(hard.first()).unwrap_or(0),
            ..Unit::default()
        });
        self.update_max_weight();
        Ok(())
    }

    fn remove_vcpu(&mut self, vcpu: VcpuId) -> Option<Cpu> {
        let unit = self.held(vcpu)?;
        self.runq_remove(vcpu);
        if let (Some(left), None) = (unit.budget, unit.running_on) {
            if let Some(domain) = self.domains.get_mut(unit.domain) {
                domain.give_back(left);
            }
        }
        self.domains.leave(unit.domain);
        self.units[vcpu] = None;
        self.update_max_weight();
        let cpu = unit.running_on?;
        self.current[cpu] = None;
        self.tickled.insert(cpu);
        Some(cpu)
    }

    fn set_params(
        &mut self,
        vcpu: VcpuId,
        params: VcpuParams,
        now: Nanos,
    ) -> Result<CpuMask, SchedError> {
        let unit = self.held(vcpu).ok_or(SchedError::UnknownVcpu)?;
        params.check_change(unit.domain, self.cpus)?;
        let mut kick = CpuMask::EMPTY;
        let (hard, soft) = params.masks(self.cpus);
        if let Some(cpu) = unit.running_on {
            self.burn(vcpu, now);
            if !hard.contains(cpu) {
                self.tickled.insert(cpu);
                kick.insert(cpu);
            }
        }
        let changed = self.unit_mut(vcpu);
        changed.weight = params.weight;
        (changed.hard, changed.soft) = (hard, soft);
        if !hard.contains(changed.processor) {
            changed.processor = soft.first().or(hard.first()).unwrap_or(0);
        }
        self.update_max_weight();
        self.set_cap(unit.domain, params.cap, now, &mut kick);
        if self.unit(vcpu).on_runq && (unit.hard != hard || unit.soft != soft) {
            kick.extend(self.tickle(vcpu, now, CpuMask::EMPTY, true));
        }
        Ok(kick)
    }

    fn wake(&mut self, vcpu: VcpuId, now: Nanos) -> Option<Cpu> {
        let unit = self.units.get_mut(vcpu)?.as_mut()?;
        unit.awake = true;
        if unit.running_on.is_some() || unit.on_runq || unit.parked {
            return None;
        }
        self.runq_insert(vcpu);
        self.tickle(vcpu, now, CpuMask::EMPTY, true)
    }

    fn sleep(&mut self, vcpu: VcpuId, _now: Nanos) -> Option<Cpu> {
        let unit = self.units.get_mut(vcpu)?.as_mut()?;
        unit.awake = false;
        if let Some(cpu) = unit.running_on {
            self.tickled.insert(cpu);
            return Some(cpu);
        }
        self.runq_remove(vcpu);
        None
    }

    fn yield_now(&mut self, vcpu: VcpuId, _now: Nanos) {
        if let Some(unit) = self.units.get_mut(vcpu).and_then(Option::as_mut) {
            unit.yielding = unit.running_on.is_some();
        }
    }

    fn schedule(&mut self, cpu: Cpu, now: Nanos) -> Decision {
        if cpu >= self.cpus {
            return Decision::IDLE;
        }
        // A pass that leaves `cpu` idle may hand work back to it: take that at once. The second
        // pass starts idle with nothing to put back, so it never hands work to `cpu` again.
        let mut kick = CpuMask::EMPTY;
        let mut pass = 0;
        loop {
            pass += 1;
            let decision = self.schedule_once(cpu, now);
            kick = kick.or(decision.kick);
            if decision.vcpu.is_some() || !decision.kick.contains(cpu) || pass == 3 {
                self.tickled.remove(cpu);
                kick.remove(cpu);
                return Decision { kick, ..decision };
            }
        }
    }

    #[cfg(test)]
    fn current(&self, cpu: Cpu) -> Option<VcpuId> {
        self.current.get(cpu).copied().flatten()
    }
}
