//! Per-CPU data: one record per logical CPU, indexed by the value in the CPU's own id register.
//!
//! # Invariants
//! - Index 0 is the boot CPU; indices follow the DTB's CPU order, up to `platform::MAX_CPUS`.
//! - Each field is atomic: other CPUs read them (boot self-tests, heartbeat, stopping).

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use xenolith_kernel::platform::MAX_CPUS;

use super::cpu;

/// What the core keeps about one CPU.
pub struct PerCpu {
    /// The CPU has finished its bring-up.
    pub online: AtomicBool,
    /// Its MPIDR affinity.
    pub mpidr: AtomicU64,
    /// Timer interrupts taken.
    pub ticks: AtomicU64,
    /// Test SGIs taken.
    pub test_sgis: AtomicU64,
    /// Address of its interrupt controller redistributor frame (arch-defined).
    pub redistributor: AtomicUsize,
    /// The vCPU slot whose live state is on this pCPU, or [`IDLE`].
    pub current: AtomicUsize,
    /// The scheduler asked this pCPU to reconsider before it returns to its vCPU.
    pub need_reschedule: AtomicBool,
    /// When `current` last changed (core nanoseconds), for run-time accounting.
    pub switched_at: AtomicU64,
    /// Counter value of its next periodic tick: scheduler deadlines may come sooner, never
    /// later, so frequent rescheduling cannot postpone the tick (and the timeouts it checks).
    pub next_tick: AtomicU64,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            online: AtomicBool::new(false),
            mpidr: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            test_sgis: AtomicU64::new(0),
            redistributor: AtomicUsize::new(0),
            current: AtomicUsize::new(IDLE),
            need_reschedule: AtomicBool::new(false),
            switched_at: AtomicU64::new(0),
            next_tick: AtomicU64::new(0),
        }
    }
}

/// `current` value of a pCPU running no vCPU.
pub const IDLE: usize = usize::MAX;

/// Every CPU's record.
pub static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];

/// The calling CPU's record.
pub fn this() -> &'static PerCpu {
    &CPUS[cpu::current_index()]
}

/// Every online CPU's index and record.
pub fn online() -> impl Iterator<Item = (usize, &'static PerCpu)> {
    CPUS.iter().enumerate().filter(|(_, cpu)| cpu.online.load(Ordering::Acquire))
}

/// How many CPUs are online.
pub fn online_count() -> usize {
    online().count()
}
