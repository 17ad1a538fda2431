//! Bounded read-modify-writes of words a guest shares with the core, as Xen's guest atomics
//! after XSA-295 (`xen/arch/arm/include/asm/guest_atomics.h`): the guest may write such a word
//! at any time, and without LSE every atomic is an exclusive-monitor loop that a guest writing
//! the word from another vCPU can keep failing, holding a pCPU. Here each update makes at most
//! [`ATTEMPTS`] single-try compare-exchanges. Xen then pauses the guest and finishes the update;
//! here the update is given up and the word's owner is marked, and the core crashes it at its
//! next reschedule ([`take_contended`]): the guest that kept the word changing is the one that
//! loses.
//!
//! # Invariants
//! - No loop here runs more than [`ATTEMPTS`] compare-exchanges, each one exclusive-monitor try
//!   without LSE (`compare_exchange_weak`).

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Compare-exchanges one update may try. A word no guest writes needs one; a guest updating
/// its own word in a loop (clearing pending bits) costs a few, so 1024 is never reached by a
/// guest that is not hammering the word.
pub const ATTEMPTS: u32 = 1024;

/// The bound in force: [`ATTEMPTS`], or what the `test_guest_atomic_attempts` hook set.
static LIMIT: AtomicU32 = AtomicU32::new(ATTEMPTS);

/// Sets the bound (the `test_guest_atomic_attempts=` test hook).
pub fn set_attempts(attempts: u32) {
    LIMIT.store(attempts.max(1), Ordering::Relaxed);
}

/// Domains marked for crashing, one bit per domain id below 64 (`MAX_DOMAINS`).
static CONTENDED: AtomicU64 = AtomicU64::new(0);

/// A shared word the core updates in place.
pub trait Word {
    /// The word's value type.
    type Value: Copy + PartialEq;
    /// `compare_exchange_weak` with `AcqRel`/`Acquire`.
    fn try_swap(&self, seen: Self::Value, new: Self::Value) -> Result<Self::Value, Self::Value>;
    /// An `Acquire` load.
    fn get(&self) -> Self::Value;
}

macro_rules! word {
    ($atomic:ty, $value:ty) => {
        impl Word for $atomic {
            type Value = $value;
            fn try_swap(&self, seen: $value, new: $value) -> Result<$value, $value> {
                self.compare_exchange_weak(seen, new, Ordering::AcqRel, Ordering::Acquire)
            }
            fn get(&self) -> $value {
                self.load(Ordering::Acquire)
            }
        }
    };
}
word!(AtomicU64, u64);
word!(AtomicU32, u32);
word!(AtomicU8, u8);

/// Replaces `word`'s value `v` with `change(v)` and returns `v`; `None` if the word changed
/// under each of [`ATTEMPTS`] tries (the bound in force), in which case nothing was written and domain `owner` is
/// marked for crashing. `before_try` runs before each try (a test hook; the kernel passes a
/// no-op).
pub fn update_with<W: Word>(
    owner: u16,
    word: &W,
    change: impl Fn(W::Value) -> W::Value,
    mut before_try: impl FnMut(),
) -> Option<W::Value> {
    let mut seen = word.get();
    for _ in 0..LIMIT.load(Ordering::Relaxed) {
        before_try();
        match word.try_swap(seen, change(seen)) {
            Ok(old) => return Some(old),
            Err(now) => seen = now,
        }
    }
    CONTENDED.fetch_or(1u64.checked_shl(owner.into()).unwrap_or(0), Ordering::AcqRel);
    None
}

/// [`update_with`] without a test hook.
pub fn update<W: Word>(
    owner: u16,
    word: &W,
    change: impl Fn(W::Value) -> W::Value,
) -> Option<W::Value> {
    update_with(owner, word, change, || {})
}

/// Takes the domains marked since the last call, as a bitmap by domain id.
pub fn take_contended() -> u64 {
    CONTENDED.swap(0, Ordering::AcqRel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanging_word_takes_one_try() {
        let word = AtomicU64::new(0b100);
        let mut tries = 0;
        assert_eq!(update_with(3, &word, |v| v | 1, || tries += 1), Some(0b100));
        assert_eq!((word.get(), tries), (0b101, 1));
    }

    #[test]
    fn a_word_changed_before_every_try_gives_up_and_marks_its_owner() {
        let word = AtomicU32::new(0);
        let mut tries = 0;
        let result = update_with(
            5,
            &word,
            |v| v | 1,
            || {
                tries += 1;
                word.fetch_add(2, Ordering::AcqRel);
            },
        );
        assert_eq!((result, tries), (None, ATTEMPTS));
        assert_eq!(word.get() & 1, 0, "nothing written");
        assert_eq!(take_contended() & (1 << 5), 1 << 5);
        assert_eq!(take_contended() & (1 << 5), 0, "taken once");
    }

    #[test]
    fn a_word_hammered_from_other_threads_never_holds_the_updater() {
        use std::sync::atomic::AtomicBool;
        let word = AtomicU8::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        word.fetch_xor(0x80, Ordering::Relaxed);
                    }
                });
            }
            // Every update ends, done or given up, however the other threads interleave.
            for _ in 0..if cfg!(miri) { 20 } else { 20_000 } {
                if update(7, &word, |v| v | 1).is_some() {
                    assert_eq!(word.get() & 1, 1);
                }
                word.fetch_and(!1, Ordering::AcqRel);
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
}
