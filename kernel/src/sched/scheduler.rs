//! Scheduling: which vCPU each physical CPU (pCPU) runs next, and for how long.
//!
//! The core's per-pCPU code (`src/schedule.rs` in the binary) owns the vCPU contexts, the timer
//! and the inter-processor interrupts; this module owns only the decisions, so that they can be
//! tested on the host by simulation. It reads no clock (`now` is an argument), arms no timer (a
//! [`Decision`] says when to call again) and sends no IPI (calls return the pCPUs to kick). Two
//! policies implement [`Scheduler`], both after Xen's (`xen/common/sched/`):
//!
//! - [`credit2::Credit2`], the default: proportional shares by weight, caps, hard and soft
//!   affinity.
//! - [`null::Null`]: one vCPU per pCPU, exclusively, never time-sliced.
//!
//! # Contract with the caller
//! - Calls are serialised (the core holds one lock around the scheduler) and `now` never goes
//!   backwards; if it does, no time is taken to have passed.
//! - A pCPU returned as a kick (by [`Scheduler::wake`], [`Scheduler::sleep`],
//!   [`Scheduler::remove_vcpu`], [`Scheduler::set_params`] or in [`Decision::kick`]) must call
//!   [`Scheduler::schedule`] soon: send it an IPI, or, for the calling pCPU, reschedule before
//!   returning to the guest. Until it does, the scheduler counts it as busy.
//! - After `schedule(cpu, now)` returns, `cpu` runs [`Decision::vcpu`] and calls `schedule`
//!   again at `now + run_for` at the latest, when kicked, or when that vCPU stops (after
//!   [`Scheduler::sleep`]).
//!
//! # Invariants (both schedulers)
//! - A vCPU is the decision of at most one pCPU at a time, and only of a pCPU in its hard affinity.
//! - A decision never names a vCPU that sleeps (between `sleep` and the next `wake`).
//! - A call that returns an error changes nothing.

use core::fmt;

pub use crate::policy::DomainId;

/// A vCPU, as an index into the scheduler's own table; the core assigns it (its vCPU slot).
pub type VcpuId = usize;
/// A physical CPU index, below the count the scheduler was created with.
pub type Cpu = usize;
/// Monotonic time in nanoseconds.
pub type Nanos = u64;

/// The most vCPUs a scheduler holds: every [`VcpuId`] is below this.
pub const MAX_VCPUS: usize = 64;
/// The most pCPUs a scheduler spreads work over (the platform's limit).
pub const MAX_PCPUS: usize = crate::platform::MAX_CPUS;
const _: () = assert!(MAX_PCPUS <= 32, "CpuMask holds 32 pCPUs");

/// Xen's default weight (`CSCHED2_DEFAULT_WEIGHT`).
pub const DEFAULT_WEIGHT: u16 = 256;
/// `sched_id` of credit2 (`XEN_SCHEDULER_CREDIT2`, `xen/include/public/domctl.h`). Belongs in `abi`
/// once its domctl module exists.
pub const XEN_SCHEDULER_CREDIT2: u32 = 6;
/// `sched_id` of null (`XEN_SCHEDULER_NULL`, `xen/include/public/domctl.h`; 7 is ARINC653, 8 RTDS).
pub const XEN_SCHEDULER_NULL: u32 = 9;

/// A set of pCPUs: bit `n` is pCPU `n`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CpuMask(u32);

impl CpuMask {
    /// No pCPU.
    pub const EMPTY: Self = Self(0);

    /// The mask of a manifest or hypercall (bit `n` is pCPU `n`); bits of pCPUs at or above
    /// [`MAX_PCPUS`] are dropped.
    pub const fn from_bits(bits: u64) -> Self {
        Self((bits & Self::all(MAX_PCPUS).0 as u64) as u32)
    }

    /// The bits, pCPU `n` at bit `n`.
    pub const fn bits(self) -> u64 {
        self.0 as u64
    }

    /// pCPUs `0..count` (at most [`MAX_PCPUS`]).
    pub const fn all(count: usize) -> Self {
        if count >= MAX_PCPUS {
            Self(u32::MAX >> (32 - MAX_PCPUS))
        } else {
            Self((1 << count) - 1)
        }
    }

    /// Just `cpu` (empty if it is not below [`MAX_PCPUS`]).
    pub const fn single(cpu: Cpu) -> Self {
        if cpu < MAX_PCPUS {
            Self(1 << cpu)
        } else {
            Self::EMPTY
        }
    }

    /// Whether `cpu` is in the set.
    pub const fn contains(self, cpu: Cpu) -> bool {
        cpu < MAX_PCPUS && self.0 & (1 << cpu) != 0
    }

    /// Adds `cpu` (ignored if it is not below [`MAX_PCPUS`]).
    pub fn insert(&mut self, cpu: Cpu) {
        self.0 |= Self::single(cpu).0;
    }

    /// Removes `cpu`.
    pub fn remove(&mut self, cpu: Cpu) {
        self.0 &= !Self::single(cpu).0;
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The pCPUs in both sets.
    #[must_use]
    pub const fn and(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The pCPUs in either set.
    #[must_use]
    pub const fn or(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The pCPUs in `self` but not in `other`.
    #[must_use]
    pub const fn and_not(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The lowest pCPU of the set.
    pub fn first(self) -> Option<Cpu> {
        self.iter().next()
    }

    /// `cpu` if it is in the set, else the next one above it, wrapping around (Xen's
    /// `cpumask_test_or_cycle`): spreads picks and keeps a vCPU where it was.
    pub fn cycle_from(self, cpu: Cpu) -> Option<Cpu> {
        self.iter().find(|&other| other >= cpu).or_else(|| self.first())
    }

    /// The pCPUs of the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = Cpu> {
        (0..MAX_PCPUS).filter(move |&cpu| self.contains(cpu))
    }
}

/// The set of the pCPUs given (ignoring those not below [`MAX_PCPUS`]).
impl FromIterator<Cpu> for CpuMask {
    fn from_iter<I: IntoIterator<Item = Cpu>>(cpus: I) -> Self {
        cpus.into_iter().fold(Self::EMPTY, |mask, cpu| mask.or(Self::single(cpu)))
    }
}

/// Adds the pCPUs given; with an `Option`, the one there is, if any.
impl Extend<Cpu> for CpuMask {
    fn extend<I: IntoIterator<Item = Cpu>>(&mut self, cpus: I) {
        *self = self.or(cpus.into_iter().collect());
    }
}

impl fmt::Debug for CpuMask {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "CpuMask({:#x})", self.0)
    }
}

/// How a vCPU is to be scheduled (Xen's `xen_domctl_sched_credit2` plus the affinities).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuParams {
    /// Relative share under contention, 1..=65535 ([`DEFAULT_WEIGHT`] is Xen's default).
    pub weight: u16,
    /// The most CPU time the vCPU's *domain* may use, in percent of one pCPU (so up to 100 × the
    /// number of pCPUs); 0 is no cap. As in Xen the cap belongs to the domain: every vCPU of a
    /// domain carries the same value, and [`Scheduler::set_params`] changes it for all of them.
    pub cap: u16,
    /// pCPUs the vCPU may run on, never others; must name at least one pCPU of the scheduler.
    pub hard_affinity: CpuMask,
    /// pCPUs the vCPU prefers, when that costs no idle time; only its part within the hard
    /// affinity counts, and an empty intersection means no preference.
    pub soft_affinity: CpuMask,
    /// The domain the vCPU belongs to (it shares the domain's cap budget).
    pub domain: DomainId,
}

impl VcpuParams {
    /// Default weight, no cap, any pCPU, for a vCPU of `domain`.
    pub const fn new(domain: DomainId) -> Self {
        let all = CpuMask::all(MAX_PCPUS);
        Self { weight: DEFAULT_WEIGHT, cap: 0, hard_affinity: all, soft_affinity: all, domain }
    }

    /// Checks the parameters for a scheduler over `cpus` pCPUs.
    pub fn validate(&self, cpus: usize) -> Result<(), SchedError> {
        if self.weight == 0 {
            return Err(SchedError::InvalidWeight);
        }
        if u64::from(self.cap) > 100 * cpus as u64 {
            return Err(SchedError::InvalidCap);
        }
        if self.hard_affinity.and(CpuMask::all(cpus)).is_empty() {
            return Err(SchedError::EmptyHardAffinity);
        }
        Ok(())
    }

    /// Checks `add_vcpu(vcpu, self)` on a scheduler over `cpus` pCPUs that holds `vcpu` if `held`.
    pub(crate) fn check_add(
        &self,
        vcpu: VcpuId,
        held: bool,
        cpus: usize,
    ) -> Result<(), SchedError> {
        if vcpu >= MAX_VCPUS {
            return Err(SchedError::VcpuOutOfRange);
        }
        if held {
            return Err(SchedError::VcpuExists);
        }
        self.validate(cpus)
    }

    /// Checks `set_params(vcpu, self)` on a scheduler over `cpus` pCPUs, for a `vcpu` it holds
    /// in `domain`.
    pub(crate) fn check_change(&self, domain: DomainId, cpus: usize) -> Result<(), SchedError> {
        self.validate(cpus)?;
        if domain != self.domain {
            return Err(SchedError::DomainMismatch);
        }
        Ok(())
    }

    /// The hard affinity within pCPUs `0..cpus`, and the soft affinity that matters: its part
    /// within the hard one if that is narrower, else empty (no preference).
    pub(crate) fn masks(&self, cpus: usize) -> (CpuMask, CpuMask) {
        let hard = self.hard_affinity.and(CpuMask::all(cpus));
        let soft = self.soft_affinity.and(hard);
        (hard, if soft == hard { CpuMask::EMPTY } else { soft })
    }
}

/// vCPUs in order, each at most once: a run queue or a wait queue. Reads as a slice.
#[derive(Clone, Copy)]
pub(crate) struct VcpuQueue {
    ids: [VcpuId; MAX_VCPUS],
    len: usize,
}

impl VcpuQueue {
    pub(crate) const EMPTY: Self = Self { ids: [0; MAX_VCPUS], len: 0 };

    /// Puts `vcpu` at `index` (at most the length), unless it is queued already (so, as every
    /// [`VcpuId`] is below [`MAX_VCPUS`], the queue never overflows).
    pub(crate) fn insert(&mut self, index: usize, vcpu: VcpuId) {
        if !self.contains(&vcpu) {
            self.ids.copy_within(index..self.len, index + 1);
            self.ids[index] = vcpu;
            self.len += 1;
        }
    }

    /// Puts `vcpu` last, unless it is queued already.
    pub(crate) fn push(&mut self, vcpu: VcpuId) {
        self.insert(self.len, vcpu);
    }

    /// Takes `vcpu` out. Returns whether it was queued.
    pub(crate) fn remove(&mut self, vcpu: VcpuId) -> bool {
        let Some(index) = self.iter().position(|&other| other == vcpu) else { return false };
        self.ids.copy_within(index + 1..self.len, index);
        self.len -= 1;
        true
    }
}

impl core::ops::Deref for VcpuQueue {
    type Target = [VcpuId];

    fn deref(&self) -> &[VcpuId] {
        &self.ids[..self.len]
    }
}

/// What the scheduler refused, and why. Every refusal is the caller's fault (bad parameters or
/// an id it does not hold) and changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// The [`VcpuId`] is not below [`MAX_VCPUS`].
    VcpuOutOfRange,
    /// `add_vcpu` of an id the scheduler already holds.
    VcpuExists,
    /// An id the scheduler does not hold.
    UnknownVcpu,
    /// A weight of 0.
    InvalidWeight,
    /// A cap above 100 × the number of pCPUs, or (on `add_vcpu`) one that differs from the cap
    /// of the domain's other vCPUs.
    InvalidCap,
    /// A hard affinity that names no pCPU of the scheduler.
    EmptyHardAffinity,
    /// `set_params` naming another domain than the vCPU's.
    DomainMismatch,
}

impl fmt::Display for SchedError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::VcpuOutOfRange => "vCPU id out of range",
            Self::VcpuExists => "vCPU already added",
            Self::UnknownVcpu => "no such vCPU",
            Self::InvalidWeight => "weight must be 1..=65535",
            Self::InvalidCap => "cap above 100 x pCPUs, or not the domain's cap",
            Self::EmptyHardAffinity => "hard affinity names no pCPU",
            Self::DomainMismatch => "a vCPU cannot change domain",
        })
    }
}

/// What a pCPU runs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The vCPU to run; `None` is idle.
    pub vcpu: Option<VcpuId>,
    /// Call [`Scheduler::schedule`] again after this long at the latest; `None` is only on an
    /// event (a kick, or the vCPU stopping).
    pub run_for: Option<Nanos>,
    /// Other pCPUs that must reschedule (send them an IPI): work this decision put back in the
    /// queue, or budget that was replenished, that one of them should pick up.
    pub kick: CpuMask,
}

impl Decision {
    /// Idle until an event.
    pub const IDLE: Self = Self { vcpu: None, run_for: None, kick: CpuMask::EMPTY };
}

/// A scheduling policy, driven by the core's per-pCPU code. See the module documentation for the
/// contract; methods given an unknown [`VcpuId`] do nothing.
pub trait Scheduler {
    /// Xen's `sched_id` (`XEN_SCHEDULER_*`).
    fn id(&self) -> u32;

    /// Xen's name for the policy (`sched=` on the command line).
    fn name(&self) -> &'static str;

    /// Takes `vcpu` on, asleep: it runs only after [`wake`](Self::wake).
    fn add_vcpu(&mut self, vcpu: VcpuId, params: VcpuParams, now: Nanos) -> Result<(), SchedError>;

    /// Forgets `vcpu`. Returns the pCPU that must reschedule: the one running it, or one that was
    /// given waiting work in its place.
    fn remove_vcpu(&mut self, vcpu: VcpuId) -> Option<Cpu>;

    /// Changes weight, cap (of the vCPU's domain) and affinities. Returns the pCPUs that must
    /// reschedule.
    fn set_params(
        &mut self,
        vcpu: VcpuId,
        params: VcpuParams,
        now: Nanos,
    ) -> Result<CpuMask, SchedError>;

    /// `vcpu` is runnable again. Returns a pCPU that should reconsider (an idle one, or one whose
    /// vCPU the woken one should preempt), if any.
    fn wake(&mut self, vcpu: VcpuId, now: Nanos) -> Option<Cpu>;

    /// `vcpu` blocked, paused or went down. Returns the pCPU running it, which must reschedule.
    fn sleep(&mut self, vcpu: VcpuId, now: Nanos) -> Option<Cpu>;

    /// `vcpu`, running, offers its pCPU to others (`SCHEDOP_yield`); the caller reschedules next.
    fn yield_now(&mut self, vcpu: VcpuId, now: Nanos);

    /// Called on `cpu` when its timer fires, it is kicked, or its vCPU stops: charges the time
    /// since the last call to the vCPU that was running and picks what runs next.
    fn schedule(&mut self, cpu: Cpu, now: Nanos) -> Decision;

    /// What `cpu` runs, as of its last [`schedule`](Self::schedule) (or `None` after its vCPU was
    /// removed). Only the host tests ask.
    #[cfg(test)]
    fn current(&self, cpu: Cpu) -> Option<VcpuId>;
}
