//! The core's one lock: a spin lock whose waiters sleep in WFE until the lock word changes
//! ([`cpu::wait_while_set`]: the release's store clears their exclusive monitors, which wakes
//! them), as Linux's arm64 locks wait. A waiter that spun instead (`spin_loop`, an ISB on
//! aarch64) never gave up its turn under QEMU's single-threaded emulation (`-icount`): the CPU
//! holding the lock never ran again and the system wedged (issue 15: two busy domains on
//! `-smp 2`). Taking and releasing a free lock costs what a plain spin lock does.
//!
//! # Invariants
//! - At most one CPU holds a [`Mutex`] (or a [`ReentrantMutex`], which its holder may take again).
//! - Every wait for a lock sleeps in WFE, and only after it has seen the lock held with its
//!   monitor armed on the word: the release's store then clears the monitor and wakes it, so no
//!   waiter sleeps past a release (a release before the look is seen by the look).
//! - Locks do not mask interrupts: a lock an interrupt handler takes is taken elsewhere only with
//!   interrupts masked.

use core::num::NonZeroUsize;
use core::sync::atomic::{AtomicBool, Ordering};

use super::cpu;

/// The lock word under [`Mutex`] and [`ReentrantMutex`]: set while held.
pub struct RawLock(AtomicBool);

// SAFETY: `try_lock` sets the word only when it was clear (an Acquire compare-exchange), so one
// caller at a time gets the lock; only its holder calls `unlock` (lock_api's guards), which
// clears the word with Release, so the next holder sees everything the last one wrote.
unsafe impl lock_api::RawMutex for RawLock {
    const INIT: Self = Self(AtomicBool::new(false));
    type GuardMarker = lock_api::GuardSend;

    fn lock(&self) {
        while !self.try_lock() {
            cpu::wait_while_set(&self.0);
        }
    }

    fn try_lock(&self) -> bool {
        self.0.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    unsafe fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Who holds a [`ReentrantMutex`]: the CPU, by its index.
pub struct ThisCpu;

// SAFETY: the value is the running CPU's index + 1 (TPIDR_EL2, set once on entry and never
// changed), so it is non-zero and no two CPUs running at once share it.
unsafe impl lock_api::GetThreadId for ThisCpu {
    const INIT: Self = Self;

    fn nonzero_thread_id(&self) -> NonZeroUsize {
        NonZeroUsize::MIN.saturating_add(cpu::current_index())
    }
}

/// A lock for data shared between CPUs.
pub type Mutex<T> = lock_api::Mutex<RawLock, T>;
/// A lock the CPU holding it may take again (the console: a panic while printing still prints).
pub type ReentrantMutex<T> = lock_api::ReentrantMutex<RawLock, ThisCpu, T>;
