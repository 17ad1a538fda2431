//! A page shared with another domain ([`SharedPage`]): volatile and atomic accesses only, and
//! copies that move whole aligned words on the page's side. Host-testable: it makes no
//! hypercall (`grants` maps and grants the pages).

use alloc::alloc::{alloc_zeroed, Layout};
use core::sync::atomic::AtomicU32;

use zerocopy::FromBytes;

/// Bytes of a page.
const PAGE_SIZE: u64 = 4096;

/// A page shared with another domain: one of this domain's own pages it grants, or another
/// domain's page it has mapped. Every access is volatile (or atomic), since the peer may change
/// the page at any time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedPage {
    address: u64,
}

impl SharedPage {
    /// A fresh zeroed page of this domain's heap, to grant. It is never freed: a granted page
    /// must not be reused while a peer may hold it. `None` if the heap is exhausted.
    pub fn allocate() -> Option<Self> {
        let layout = Layout::from_size_align(PAGE_SIZE as usize, PAGE_SIZE as usize).ok()?;
        // SAFETY: `layout` has a non-zero size, as `alloc_zeroed` requires.
        let pointer = unsafe { alloc_zeroed(layout) };
        (!pointer.is_null()).then_some(Self { address: pointer as u64 })
    }

    /// The page at `address`, typically a grant mapped there with [`map`].
    ///
    /// # Safety
    /// `address` must be page-aligned and mapped in this domain as normal memory (in the
    /// runtime's identity map: RAM or the 1-4 GiB window) for as long as the returned value or a
    /// copy of it is used, readable, and writable if it is written; nothing may hold a Rust
    /// reference to its bytes.
    pub const unsafe fn at(address: u64) -> Self {
        Self { address }
    }

    /// Its guest-physical address.
    pub const fn address(self) -> u64 {
        self.address
    }

    /// Its guest frame number (what a grant entry names; 32 bits, as in `grant_entry_v1`).
    pub const fn gfn(self) -> u32 {
        (self.address / PAGE_SIZE) as u32
    }

    fn checked(self, offset: usize, size: usize) -> u64 {
        assert!(
            offset.is_multiple_of(size) && offset + size <= PAGE_SIZE as usize,
            "access of {size} bytes at {offset:#x} is not an aligned access inside a page"
        );
        self.address + offset as u64
    }

    /// Reads the 64-bit word at byte `offset` (8-aligned, inside the page; panics otherwise).
    pub fn read_u64(self, offset: usize) -> u64 {
        let at = self.checked(offset, 8);
        // SAFETY: `at` is an aligned word inside the page, which is mapped readable as normal
        // memory (the constructors' contract); volatile, as the peer may write it.
        unsafe { core::ptr::read_volatile(at as *const u64) }
    }

    /// Writes the 64-bit word at byte `offset` (8-aligned, inside the page; panics otherwise).
    pub fn write_u64(self, offset: usize, value: u64) {
        let at = self.checked(offset, 8);
        // SAFETY: `at` is an aligned word inside the page, mapped writable as normal memory
        // (the constructors' contract); volatile, as the peer may read it.
        unsafe { core::ptr::write_volatile(at as *mut u64, value) }
    }

    /// Reads the 32-bit word at byte `offset` (4-aligned, inside the page; panics otherwise).
    pub fn read_u32(self, offset: usize) -> u32 {
        let at = self.checked(offset, 4);
        // SAFETY: as for `read_u64`, for an aligned 32-bit word.
        unsafe { core::ptr::read_volatile(at as *const u32) }
    }

    /// Writes the 32-bit word at byte `offset` (4-aligned, inside the page; panics otherwise).
    pub fn write_u32(self, offset: usize, value: u32) {
        let at = self.checked(offset, 4);
        // SAFETY: as for `write_u64`, for an aligned 32-bit word.
        unsafe { core::ptr::write_volatile(at as *mut u32, value) }
    }

    /// Reads the byte at `offset` (inside the page; panics otherwise).
    pub fn read_u8(self, offset: usize) -> u8 {
        let at = self.checked(offset, 1);
        // SAFETY: as for `read_u64`, for one byte.
        unsafe { core::ptr::read_volatile(at as *const u8) }
    }

    /// Writes the byte at `offset` (inside the page; panics otherwise).
    pub fn write_u8(self, offset: usize, value: u8) {
        let at = self.checked(offset, 1);
        // SAFETY: as for `write_u64`, for one byte.
        unsafe { core::ptr::write_volatile(at as *mut u8, value) }
    }

    /// Copies the page's bytes from `offset` into `out` (inside the page; panics otherwise):
    /// volatile 8-byte words on the page's aligned words, bytes before and after them; an
    /// `out` not aligned with the page gets aligned words made of two page words each.
    pub fn read_bytes(self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= PAGE_SIZE as usize, "a read past the page");
        let (head, words) = Self::word_span(offset, out.len());
        for (index, byte) in out[..head].iter_mut().enumerate() {
            *byte = self.read_u8(offset + index);
        }
        let (middle, tail) = out[head..].split_at_mut(words * 8);
        let base = self.address + (offset + head) as u64;
        // Word `index` (below `words`, as both loops below ask) of the page from `base`.
        let word = |index: usize| {
            // SAFETY: `base` is 8-aligned (`word_span`) and the `words` words from it are inside
            // the page (asserted above), mapped readable as normal memory (the constructors'
            // contract); volatile, as the peer may write them.
            unsafe { core::ptr::read_volatile((base + 8 * index as u64) as *const u64) }
        };
        match <[u64]>::mut_from_bytes(middle) {
            // `out` aligned with the page: whole words.
            Ok(middle) => middle.iter_mut().enumerate().for_each(|(i, out)| *out = word(i)),
            // Not: `out`'s aligned words from pairs of page words (`skewed`).
            Err(error) => match skewed_mut(error.into_src()) {
                Some(Skewed { first, aligned, last, lead }) => {
                    let mut previous = u64::from_le(word(0));
                    first.copy_from_slice(&previous.to_le_bytes()[..lead]);
                    for (index, out) in aligned.iter_mut().enumerate() {
                        let next = u64::from_le(word(index + 1));
                        *out = (previous >> (8 * lead) | next << (8 * (8 - lead))).to_le();
                        previous = next;
                    }
                    last.copy_from_slice(&previous.to_le_bytes()[lead..]);
                }
                // No whole word (`skewed_mut` has one for any misaligned word): nothing here.
                None => debug_assert_eq!(words, 0),
            },
        }
        let done = offset + head + words * 8;
        for (index, byte) in tail.iter_mut().enumerate() {
            *byte = self.read_u8(done + index);
        }
    }

    /// Copies `data` into the page from `offset` (inside the page; panics otherwise):
    /// volatile 8-byte words on the page's aligned words, bytes before and after them; a
    /// `data` not aligned with the page gives each page word from two of its aligned words.
    pub fn write_bytes(self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= PAGE_SIZE as usize, "a write past the page");
        let (head, words) = Self::word_span(offset, data.len());
        for (index, &byte) in data[..head].iter().enumerate() {
            self.write_u8(offset + index, byte);
        }
        let (middle, tail) = data[head..].split_at(words * 8);
        let base = self.address + (offset + head) as u64;
        // Writes word `index` (below `words`, as both loops below ask) of the page from `base`.
        let put = |index: usize, word: u64| {
            // SAFETY: as in `read_bytes`, the page mapped writable; volatile, as the peer may
            // read it.
            unsafe { core::ptr::write_volatile((base + 8 * index as u64) as *mut u64, word) }
        };
        match <[u64]>::ref_from_bytes(middle) {
            // `data` aligned with the page: whole words.
            Ok(middle) => middle.iter().enumerate().for_each(|(index, &word)| put(index, word)),
            // Not: each page word from a pair of `data`'s aligned words (`skewed`).
            Err(_) => match skewed(middle) {
                Some(Skewed { first, aligned, last, lead }) => {
                    let mut carry = le_word(first);
                    for (index, &local) in aligned.iter().enumerate() {
                        let local = u64::from_le(local);
                        put(index, (carry | local << (8 * lead)).to_le());
                        carry = local >> (8 * (8 - lead));
                    }
                    put(words - 1, (carry | le_word(last) << (8 * lead)).to_le());
                }
                // No whole word (`skewed` has one for any misaligned word): nothing here.
                None => debug_assert_eq!(words, 0),
            },
        }
        let done = offset + head + words * 8;
        for (index, &byte) in tail.iter().enumerate() {
            self.write_u8(done + index, byte);
        }
    }

    /// For a copy of `len` bytes at the page's `offset`: the bytes before the page's next
    /// 8-aligned offset, and the whole words after them. The words are moved whole on the
    /// page's side; a local buffer not aligned with them is moved in its own aligned words,
    /// each page word made of two of them (`skewed`): under the targets' strict alignment
    /// (`aarch64-unknown-none` is `+strict-align`) an unaligned word costs eight byte loads.
    fn word_span(offset: usize, len: usize) -> (usize, usize) {
        let head = (offset.wrapping_neg() % 8).min(len);
        (head, (len - head) / 8)
    }

    /// The 32-bit word at byte `offset` as an atomic (4-aligned, inside the page; panics
    /// otherwise).
    pub fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        let at = self.checked(offset, 4);
        // SAFETY: `at` is an aligned word inside the page, mapped as normal memory for as long as
        // `self` is used (the constructors' contract), so for the borrow; the page is only
        // accessed with volatile or atomic operations, never through a Rust reference to plain
        // data, so an atomic view of it aliases nothing.
        unsafe { &*(at as *const AtomicU32) }
    }
}

/// Whole words of local bytes that do not start 8-aligned, cut at their own aligned words.
struct Skewed<Bytes, Words> {
    /// The `lead` bytes before the first aligned word.
    first: Bytes,
    /// The aligned words: one fewer than the run has.
    aligned: Words,
    /// The `8 - lead` bytes after them.
    last: Bytes,
    /// 1 to 7.
    lead: usize,
}

/// `middle` (whole words) cut as [`Skewed`]; `None` if it is aligned or empty.
fn skewed(middle: &[u8]) -> Option<Skewed<&[u8], &[u64]>> {
    let lead = 8 - middle.as_ptr() as usize % 8;
    if lead == 8 || middle.len() < 8 {
        return None;
    }
    let (first, rest) = middle.split_at(lead);
    let (aligned, last) = rest.split_at(middle.len() - 8);
    Some(Skewed { first, aligned: <[u64]>::ref_from_bytes(aligned).ok()?, last, lead })
}

/// [`skewed`] of a buffer to fill.
fn skewed_mut(middle: &mut [u8]) -> Option<Skewed<&mut [u8], &mut [u64]>> {
    let lead = 8 - middle.as_ptr() as usize % 8;
    if lead == 8 || middle.len() < 8 {
        return None;
    }
    let length = middle.len();
    let (first, rest) = middle.split_at_mut(lead);
    let (aligned, last) = rest.split_at_mut(length - 8);
    Some(Skewed { first, aligned: <[u64]>::mut_from_bytes(aligned).ok()?, last, lead })
}

/// `bytes` (at most 8) as the low bytes of a little-endian word.
fn le_word(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0, |word, &byte| word << 8 | u64::from(byte))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec::Vec;

    /// A page of host memory, aligned as a guest page is.
    #[repr(C, align(4096))]
    struct Page([u8; PAGE_SIZE as usize]);

    /// Every page offset and every alignment of the local buffer against it (both copy paths:
    /// whole words where the two align, bytes assembled into words where they do not), for
    /// lengths around a word: what `write_bytes` puts is what the page holds and what
    /// `read_bytes` gives back, and nothing around it changes.
    #[test]
    fn copies_at_every_alignment_round_trip() {
        let mut page = Box::new(Page([0xee; PAGE_SIZE as usize]));
        // SAFETY: the box is page-aligned host memory that lives to the end of the test; the
        // test reads it only through `shared` and after `shared`'s last write.
        let shared = unsafe { SharedPage::at(page.0.as_mut_ptr() as u64) };
        let source: Vec<u8> =
            (0..4200u32).map(|i| (i as u8).wrapping_mul(37) ^ (i >> 8) as u8).collect();
        for offset in [0, 1, 3, 4, 7, 8, 13, 4072, 4080] {
            for skew in 0..8 {
                for length in [0, 1, 7, 8, 9, 15, 16, 17, 23, 40, 100, 1001, 4000, 4096] {
                    if offset + length > PAGE_SIZE as usize {
                        continue;
                    }
                    let data = &source[skew..skew + length];
                    shared.write_bytes(offset, data);
                    let mut back = [0u8; 4200];
                    shared.read_bytes(offset, &mut back[skew..skew + length]);
                    assert_eq!(&back[skew..skew + length], data, "{offset} {skew} {length}");
                    shared.write_bytes(offset, &[0xee; 4096][..length]);
                }
            }
        }
        assert!(page.0.iter().all(|&byte| byte == 0xee), "a copy reached past its range");
    }
}
