//! A deterministic random source for host tests (xorshift64, no dependencies), so randomized
//! model tests replay the same sequence on every run.

/// xorshift64 state (never zero).
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value below `bound`.
    pub fn below(&mut self, bound: u64) -> u32 {
        (self.next() % bound) as u32
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next() & 1 == 0
    }
}
