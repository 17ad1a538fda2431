//! The core's locks: a spin lock ([`Mutex`]) and a readers-writer lock word ([`RawShared`], under
//! the domain table), whose waiters sleep in WFE until the lock word changes
//! ([`cpu::wait_while_equal`]: the release's store clears their exclusive monitors, which wakes
//! them), as Linux's arm64 locks wait. A waiter that spun instead (`spin_loop`, an ISB on
//! aarch64) never gave up its turn under QEMU's single-threaded emulation (`-icount`): the CPU
//! holding the lock never ran again and the system wedged (issue 15: two busy domains on
//! `-smp 2`). Taking and releasing a free lock costs what a plain spin lock does.
//!
//! # Invariants
//! - At most one CPU holds a [`Mutex`] (or a [`ReentrantMutex`], which its holder may take again).
//! - A [`RawShared`] is held by one writer or by readers, never both; a writer that waits bars
//!   new readers, so a stream of readers cannot starve it.
//! - Every wait for a lock sleeps in WFE, and only after it has seen the lock held with its
//!   monitor armed on the word: the release's store then clears the monitor and wakes it, so no
//!   waiter sleeps past a release (a release before the look is seen by the look).
//! - Locks do not mask interrupts: a lock an interrupt handler takes is taken elsewhere only with
//!   interrupts masked.

use core::num::NonZeroUsize;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::cpu;

/// The lock word under [`Mutex`] and [`ReentrantMutex`]: 1 while held.
pub struct RawLock(AtomicU32);

// SAFETY: `try_lock` sets the word only when it was clear (an Acquire compare-exchange), so one
// caller at a time gets the lock; only its holder calls `unlock` (lock_api's guards), which
// clears the word with Release, so the next holder sees everything the last one wrote.
unsafe impl lock_api::RawMutex for RawLock {
    const INIT: Self = Self(AtomicU32::new(0));
    type GuardMarker = lock_api::GuardSend;

    fn lock(&self) {
        while !self.try_lock() {
            cpu::wait_while_equal(&self.0, 1);
        }
    }

    fn try_lock(&self) -> bool {
        self.0.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    unsafe fn unlock(&self) {
        self.0.store(0, Ordering::Release);
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

/// A readers-writer lock word: [`WRITER`] while a writer holds it, else the count of readers,
/// with [`WAITING`] set while a writer waits (new readers wait then); and how many readers came
/// in while another was inside (what shows that readers do run side by side).
pub struct RawShared(AtomicU32, AtomicU64);

const WRITER: u32 = 1 << 31;
const WAITING: u32 = 1 << 30;

impl RawShared {
    /// A free lock.
    pub const fn new() -> Self {
        Self(AtomicU32::new(0), AtomicU64::new(0))
    }

    /// Takes it as one of its readers.
    #[inline(always)]
    pub fn lock_shared(&self) {
        if self.0.compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_shared_contended();
        }
    }

    /// [`Self::lock_shared`] when the word was not free.
    #[cold]
    fn lock_shared_contended(&self) {
        loop {
            let seen = self.0.load(Ordering::Relaxed);
            if seen & (WRITER | WAITING) != 0 {
                cpu::wait_while_equal(&self.0, seen);
            } else if self
                .0
                .compare_exchange(seen, seen + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                if seen != 0 {
                    self.1.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        }
    }

    /// How many readers came in while another reader was inside.
    pub fn side_by_side(&self) -> u64 {
        self.1.load(Ordering::Relaxed)
    }

    /// Releases one reader's hold.
    ///
    /// # Safety
    /// The caller holds it as a reader ([`Self::lock_shared`]).
    pub unsafe fn unlock_shared(&self) {
        self.0.fetch_sub(1, Ordering::Release);
    }

    /// Takes it alone: bars new readers, then waits for those inside to leave.
    pub fn lock(&self) {
        loop {
            let seen = self.0.load(Ordering::Relaxed);
            if seen & !WAITING == 0 {
                if self
                    .0
                    .compare_exchange(seen, WRITER, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            } else if seen & WAITING == 0 {
                self.0.fetch_or(WAITING, Ordering::Relaxed);
            } else {
                cpu::wait_while_equal(&self.0, seen);
            }
        }
    }

    /// Releases the writer's hold (and any other writer's bar, which sets it again when it
    /// looks).
    ///
    /// # Safety
    /// The caller holds it alone ([`Self::lock`]).
    pub unsafe fn unlock(&self) {
        self.0.store(0, Ordering::Release);
    }
}
