//! null, the scheduler that does not schedule: each vCPU owns one pCPU, after Xen's
//! `xen/common/sched/null.c` (semantics re-implemented, not code).
//!
//! A vCPU is assigned a pCPU when it is added (a free one in its soft affinity, else in its hard
//! affinity) and keeps it until it is removed or its hard affinity excludes it. The pCPU runs it
//! whenever it is awake and idles otherwise; nothing is time-sliced, so decisions carry no timer.
//! This is for static systems with no more vCPUs than pCPUs (embedded, real-time, HPC): no
//! accounting, no migration, the lowest overhead and jitter. vCPUs that find no free pCPU wait in
//! a FIFO queue and get the next pCPU their affinity allows that becomes free (a waiter in whose
//! soft affinity it is goes first).
//!
//! # Invariants
//! - `assigned[c] == Some(v)` exactly when `vcpus[v].cpu == Some(c)`; a vCPU is assigned to at
//!   most one pCPU, always within its hard affinity.
//! - A held vCPU is either assigned or in the wait queue, never both.
//! - No waiting vCPU has a free pCPU in its hard affinity.
//! - `current[c]` is `assigned[c]` or `None`.

#[cfg(test)]
mod tests;

use super::{
    Cpu, CpuMask, Decision, Nanos, SchedError, Scheduler, VcpuId, VcpuParams, VcpuQueue, MAX_PCPUS,
    MAX_VCPUS, XEN_SCHEDULER_NULL,
};

#[derive(Clone, Copy, Debug)]
struct Vcpu {
    params: VcpuParams,
    hard: CpuMask,
    /// The soft affinity within `hard`; empty when it does not narrow it.
    soft: CpuMask,
    awake: bool,
    cpu: Option<Cpu>,
}

/// The null scheduler over `cpus` pCPUs.
pub struct Null {
    cpus: usize,
    vcpus: [Option<Vcpu>; MAX_VCPUS],
    assigned: [Option<VcpuId>; MAX_PCPUS],
    current: [Option<VcpuId>; MAX_PCPUS],
    /// vCPUs without a pCPU, oldest first.
    waitq: VcpuQueue,
}

impl Null {
    /// A scheduler over pCPUs `0..cpus`.
    ///
    /// # Panics
    /// If `cpus` is 0 or above [`MAX_PCPUS`] (the platform never reports such a count).
    pub fn new(cpus: usize) -> Self {
        assert!((1..=MAX_PCPUS).contains(&cpus), "null over {cpus} pCPUs");
        Self {
            cpus,
            vcpus: [None; MAX_VCPUS],
            assigned: [None; MAX_PCPUS],
            current: [None; MAX_PCPUS],
            waitq: VcpuQueue::EMPTY,
        }
    }

    /// pCPUs assigned to no vCPU.
    fn free(&self) -> CpuMask {
        (0..self.cpus).filter(|&cpu| self.assigned[cpu].is_none()).collect()
    }

    /// A free pCPU for `vcpu`: in its soft affinity if possible (Xen's `pick_res`).
    fn pick(&self, vcpu: &Vcpu) -> Option<Cpu> {
        let free = self.free();
        free.and(vcpu.soft).first().or_else(|| free.and(vcpu.hard).first())
    }

    fn assign(&mut self, vcpu: VcpuId, cpu: Cpu) {
        self.assigned[cpu] = Some(vcpu);
        if let Some(entry) = self.vcpus[vcpu].as_mut() {
            entry.cpu = Some(cpu);
        }
    }

    /// Assigns `vcpu` a free pCPU, or queues it. Returns the pCPU.
    fn place(&mut self, vcpu: VcpuId) -> Option<Cpu> {
        let cpu = self.pick(&self.vcpus[vcpu]?);
        match cpu {
            Some(cpu) => self.assign(vcpu, cpu),
            None => self.waitq.push(vcpu),
        }
        cpu
    }

    /// Frees `cpu` and gives it to the first waiter whose soft, else hard, affinity has it (Xen's
    /// `unit_deassign`).
    fn release(&mut self, cpu: Cpu) {
        if let Some(entry) = self.assigned[cpu].take().and_then(|vcpu| self.vcpus[vcpu].as_mut()) {
            entry.cpu = None;
        }
        self.current[cpu] = None;
        let first_in = |mask: fn(&Vcpu) -> CpuMask| {
            let fits =
                |vcpu: &VcpuId| self.vcpus[*vcpu].is_some_and(|entry| mask(&entry).contains(cpu));
            self.waitq.iter().copied().find(fits)
        };
        if let Some(heir) = first_in(|entry| entry.soft).or_else(|| first_in(|entry| entry.hard)) {
            self.waitq.remove(heir);
            self.assign(heir, cpu);
        }
    }
}

impl Scheduler for Null {
    fn id(&self) -> u32 {
        XEN_SCHEDULER_NULL
    }

    fn name(&self) -> &'static str {
        "null"
    }

    fn add_vcpu(&mut self, vcpu: VcpuId, params: VcpuParams, _: Nanos) -> Result<(), SchedError> {
        params.check_add(vcpu, self.vcpus.get(vcpu).is_some_and(Option::is_some), self.cpus)?;
        let (hard, soft) = params.masks(self.cpus);
        self.vcpus[vcpu] = Some(Vcpu { params, hard, soft, awake: false, cpu: None });
        self.place(vcpu);
        Ok(())
    }

    fn remove_vcpu(&mut self, vcpu: VcpuId) -> Option<Cpu> {
        let entry = self.vcpus.get(vcpu).copied().flatten()?;
        self.waitq.remove(vcpu);
        if let Some(cpu) = entry.cpu {
            self.release(cpu);
        }
        self.vcpus[vcpu] = None;
        entry.cpu
    }

    fn set_params(
        &mut self,
        vcpu: VcpuId,
        params: VcpuParams,
        _now: Nanos,
    ) -> Result<CpuMask, SchedError> {
        let entry = self.vcpus.get(vcpu).copied().flatten().ok_or(SchedError::UnknownVcpu)?;
        params.check_change(entry.params.domain, self.cpus)?;
        let (hard, soft) = params.masks(self.cpus);
        self.vcpus[vcpu] = Some(Vcpu { params, hard, soft, ..entry });
        let mut kick = CpuMask::EMPTY;
        if let Some(cpu) = entry.cpu.filter(|&cpu| !hard.contains(cpu)) {
            // Moved off its pCPU: free it (and give it to a waiter), then find another.
            self.release(cpu);
            kick.insert(cpu);
            kick.extend(self.place(vcpu));
        } else if let (None, Some(cpu)) = (entry.cpu, self.pick(&Vcpu { hard, soft, ..entry })) {
            // Waiting: a free pCPU of the new affinity ends the wait.
            self.waitq.remove(vcpu);
            self.assign(vcpu, cpu);
            kick.insert(cpu);
        }
        Ok(kick)
    }

    fn wake(&mut self, vcpu: VcpuId, _now: Nanos) -> Option<Cpu> {
        let entry = self.vcpus.get_mut(vcpu)?.as_mut()?;
        entry.awake = true;
        let cpu = entry.cpu?;
        (self.current[cpu] != Some(vcpu)).then_some(cpu)
    }

    fn sleep(&mut self, vcpu: VcpuId, _now: Nanos) -> Option<Cpu> {
        let entry = self.vcpus.get_mut(vcpu)?.as_mut()?;
        entry.awake = false;
        let cpu = entry.cpu?;
        (self.current[cpu] == Some(vcpu)).then_some(cpu)
    }

    fn yield_now(&mut self, _vcpu: VcpuId, _now: Nanos) {
        // The pCPU is the vCPU's alone: there is no one to yield to (Xen's null has no yield).
    }

    fn schedule(&mut self, cpu: Cpu, _now: Nanos) -> Decision {
        if cpu >= self.cpus {
            return Decision::IDLE;
        }
        let next =
            self.assigned[cpu].filter(|&vcpu| self.vcpus[vcpu].is_some_and(|entry| entry.awake));
        self.current[cpu] = next;
        Decision { vcpu: next, run_for: None, kick: CpuMask::EMPTY }
    }

    #[cfg(test)]
    fn current(&self, cpu: Cpu) -> Option<VcpuId> {
        self.current.get(cpu).copied().flatten()
    }
}
