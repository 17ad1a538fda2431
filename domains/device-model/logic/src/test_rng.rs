//! The tests' pseudo-random numbers: Marsaglia's xorshift64, seeded per test so every run
//! sees the same sequence.

/// A xorshift64 generator (its state must not be 0).
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Damages `bytes` (at least one byte): overwrites one to three bytes and cuts up to
    /// `max_cut` bytes off the end.
    pub fn damage(&mut self, bytes: &mut alloc::vec::Vec<u8>, max_cut: u64) {
        for _ in 0..1 + self.next() % 3 {
            let at = (self.next() as usize) % bytes.len();
            bytes[at] = self.next() as u8;
        }
        let cut = (self.next() % (max_cut + 1)) as usize;
        bytes.truncate(bytes.len().saturating_sub(cut));
    }
}
