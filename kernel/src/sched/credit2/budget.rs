//! credit2 caps: each capped domain's pool of CPU time, after Xen's budget model
//! (`xen/common/sched/credit2.c`, "Utilization cap").
//!
//! A domain with a cap of `c` percent receives `c`% of [`CAP_PERIOD`] of run time per period, in a
//! pool its vCPUs draw on: a vCPU about to run grabs a quota (the pool divided among the domain's
//! vCPUs, at least [`MIN_TIMER`](super::MIN_TIMER)), runs at most that long, and gives back what it
//! did not use when it stops. A vCPU that finds the pool empty is *parked* (not runnable) until the
//! next refill. Overruns (a vCPU runs past its quota by up to a minimum timeslice) are charged to
//! the pool, so the cap holds on average.
//!
//! Xen refills each pool from a per-domain periodic timer. Here refills are lazy:
//! [`Domain::refill`] applies every period boundary passed by `now`, which gives the same pool as
//! the timer would have, because a pool is only read when a vCPU grabs from it; the scheduler arms
//! its pCPU timers at [`Domain::next_refill`] of any domain with parked vCPUs, so these wake on
//! time.
//!
//! # Invariants
//! - Every record has at least one vCPU (`units > 0`); a domain without a cap has `total == 0`.
//! - `budget <= total` right after a refill that leaves it positive.
//! - `next_refill` is the first period boundary after the last refill considered.

use super::super::{DomainId, Nanos, MAX_VCPUS};
use super::MIN_TIMER;

/// Period of the cap refill (Xen's `CSCHED2_BDGT_REPL_PERIOD`, `credit2_cap_period_ms=10`).
pub const CAP_PERIOD: Nanos = 10_000_000;

/// One domain's share of the scheduler: its vCPU count and, when capped, its budget pool.
#[derive(Clone, Copy, Debug)]
pub(super) struct Domain {
    /// Whose record this is.
    pub id: DomainId,
    /// How many vCPUs of the domain the scheduler holds.
    pub units: usize,
    /// The cap in percent of one pCPU; 0 is none.
    pub cap: u16,
    /// Run time per period (`tot_budget`).
    pub total: i64,
    /// Run time left in the pool this period (`budget`); may be negative after an overrun.
    pub budget: i64,
    /// When the next refill is due.
    pub next_refill: Nanos,
}

impl Domain {
    /// What one vCPU takes from the pool at a time (`budget_quota`).
    pub fn quota(&self) -> i64 {
        (self.total / self.units.max(1) as i64).max(MIN_TIMER as i64)
    }

    /// Turns the cap on, off or changes it. Turning it on fills the pool and starts the period.
    pub fn set_cap(&mut self, cap: u16, now: Nanos) {
        let total = CAP_PERIOD as i64 * i64::from(cap) / 100;
        if cap == 0 {
            self.budget = 0;
        } else if self.cap == 0 {
            (self.budget, self.next_refill) = (total, now.saturating_add(CAP_PERIOD));
        }
        (self.cap, self.total) = (cap, total);
    }

    /// Applies every refill due by `now`. Returns whether the pool is positive after a refill, so
    /// that parked vCPUs may be unparked.
    pub fn refill(&mut self, now: Nanos) -> bool {
        if self.cap == 0 || self.next_refill > now {
            return false;
        }
        let periods = (now - self.next_refill) / CAP_PERIOD + 1;
        let added = self.total.saturating_mul(i64::try_from(periods).unwrap_or(i64::MAX));
        self.budget = self.budget.saturating_add(added);
        self.next_refill = self.next_refill.saturating_add(periods.saturating_mul(CAP_PERIOD));
        if self.budget <= 0 {
            return false;
        }
        self.budget = self.budget.min(self.total);
        true
    }

    /// A vCPU whose own budget is `left` (zero or an overrun below it) asks for more. Returns its
    /// new budget; 0 means the pool is empty and the vCPU must park.
    pub fn grab(&mut self, left: i64) -> i64 {
        self.budget += left.min(0);
        if self.budget <= 0 {
            return 0;
        }
        let granted = self.quota().min(self.budget);
        self.budget -= granted;
        granted
    }

    /// A vCPU stopped with `left` unused. Returns whether the pool is positive now.
    pub fn give_back(&mut self, left: i64) -> bool {
        self.budget += left.max(0);
        self.budget > 0
    }
}

/// The domains that have vCPUs in the scheduler (at most one per vCPU).
pub(super) struct Domains {
    records: [Option<Domain>; MAX_VCPUS],
}

impl Domains {
    pub const fn new() -> Self {
        Self { records: [None; MAX_VCPUS] }
    }

    pub fn get(&self, id: DomainId) -> Option<&Domain> {
        self.records.iter().flatten().find(|domain| domain.id == id)
    }

    pub fn get_mut(&mut self, id: DomainId) -> Option<&mut Domain> {
        self.records.iter_mut().flatten().find(|domain| domain.id == id)
    }

    /// Counts a new vCPU of domain `id` (creating its record, capped at `cap`). The caller checked
    /// that the domain has no other cap, and holds fewer than [`MAX_VCPUS`] vCPUs, so a record is
    /// free.
    pub fn join(&mut self, id: DomainId, cap: u16, now: Nanos) {
        if let Some(domain) = self.get_mut(id) {
            domain.units += 1;
            return;
        }
        if let Some(slot) = self.records.iter_mut().find(|slot| slot.is_none()) {
            let mut domain = Domain { id, units: 1, cap: 0, total: 0, budget: 0, next_refill: now };
            domain.set_cap(cap, now);
            *slot = Some(domain);
        }
    }

    /// Counts a vCPU of domain `id` gone, dropping the record with its last vCPU.
    pub fn leave(&mut self, id: DomainId) {
        for slot in &mut self.records {
            if let Some(domain) = slot.as_mut().filter(|domain| domain.id == id) {
                domain.units -= 1;
                if domain.units == 0 {
                    *slot = None;
                }
                return;
            }
        }
    }

    /// Applies the refills due by `now` to record `index` (below [`MAX_VCPUS`]). Returns its
    /// domain if the pool is positive after a refill, so that parked vCPUs may be unparked.
    pub fn refill(&mut self, index: usize, now: Nanos) -> Option<DomainId> {
        let domain = self.records[index].as_mut()?;
        domain.refill(now).then_some(domain.id)
    }
}
