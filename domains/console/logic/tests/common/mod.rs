//! Shared test helpers: a guest's side of a console page, a sequenced sink, a seeded PRNG.
#![allow(dead_code)]

use xenolith_console_logic::ring::{
    IN_CONS_OFFSET, IN_OFFSET, IN_PROD_OFFSET, IN_SIZE, OUT_CONS_OFFSET, OUT_OFFSET,
    OUT_PROD_OFFSET, OUT_SIZE, PAGE_SIZE,
};
use xenolith_console_logic::{Line, RingPage};

pub type Page = [u8; PAGE_SIZE];

/// A zeroed page, as the toolstack hands it out.
pub fn page() -> Page {
    [0; PAGE_SIZE]
}

/// A page whose four indexes all start at `start` (to test wrap-around of the u32 indexes).
pub fn page_at(start: u32) -> Page {
    let mut page = page();
    for offset in [IN_CONS_OFFSET, IN_PROD_OFFSET, OUT_CONS_OFFSET, OUT_PROD_OFFSET] {
        page.write_index(offset, start);
    }
    page
}

/// The guest writes as much of `bytes` as `out` has room for; returns how many.
pub fn guest_write(page: &mut Page, bytes: &[u8]) -> usize {
    let cons = page.read_index(OUT_CONS_OFFSET);
    let prod = page.read_index(OUT_PROD_OFFSET);
    let room = (OUT_SIZE - prod.wrapping_sub(cons)) as usize;
    let count = room.min(bytes.len());
    for (step, &byte) in bytes[..count].iter().enumerate() {
        let index = prod.wrapping_add(step as u32) & (OUT_SIZE - 1);
        page.write_byte(OUT_OFFSET + index as usize, byte);
    }
    page.write_index(OUT_PROD_OFFSET, prod.wrapping_add(count as u32));
    count
}

/// The guest reads all of `in` and advances `in_cons`.
pub fn guest_read(page: &mut Page) -> Vec<u8> {
    let cons = page.read_index(IN_CONS_OFFSET);
    let prod = page.read_index(IN_PROD_OFFSET);
    let count = prod.wrapping_sub(cons);
    assert!(count <= IN_SIZE, "the backend overfilled in");
    let bytes = (0..count)
        .map(|step| page.read_byte(IN_OFFSET + (cons.wrapping_add(step) & (IN_SIZE - 1)) as usize))
        .collect();
    page.write_index(IN_CONS_OFFSET, prod);
    bytes
}

/// The hypervisor console as the protocol needs it: it remembers the last sequence number it
/// accepted (across the console domain's restarts) and drops lines numbered at or below it.
#[derive(Default)]
pub struct Sink {
    pub last: u64,
    pub lines: Vec<Vec<u8>>,
    pub dropped: usize,
}

impl Sink {
    pub fn write(&mut self, line: &Line) {
        if line.sequence <= self.last {
            self.dropped += 1;
            return;
        }
        self.last = line.sequence;
        self.lines.push(line.text.clone());
    }
}

/// Deterministic xorshift64* generator (as the xenstore logic's tests use).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
