//! Xen's shared-ring protocol (`xen/include/public/io/ring.h`): the page layout every split
//! driver's request/response ring uses, and the front and back ends' index logic.
//!
//! A shared ring is one region (usually a 4 KiB page) holding a 64-byte header
//! ([`sring_header`]: the four free-running indices and padding) followed by an array of entries,
//! each wide enough for a request or a response. The array's length is the largest power of two
//! that fits ([`ring_size`]); an index names slot `index & (size - 1)`.
//!
//! The front end produces requests and consumes responses ([`FrontRing`]); the back end consumes
//! requests and produces responses ([`BackRing`]). Each keeps its private indices to itself and
//! reaches the shared ones through [`SharedIndices`], so the same logic runs over real shared
//! memory (an implementation doing volatile accesses and supplying barriers) and over a plain
//! [`sring_header`] in tests.
//!
//! # Invariants
//! - Indices are free-running `u32`s ([`RING_IDX`]) and all index arithmetic wraps, as in C.
//! - The notification decisions are `ring.h`'s exactly: push-and-check-notify notifies iff the
//!   event index lies in `(old, new]`, i.e. `new - event < new - old` in wrapping arithmetic;
//!   the final checks set the event index to `consumed + 1` and look again.
//! - Beyond `ring.h`, [`FrontRing::next_response`] and [`BackRing::next_response`] refuse to run
//!   past outstanding work, so a misbehaving peer's producer index can make an end read stale
//!   slots but never corrupt its own private indices.
//!
//! # Memory barriers
//! `ring.h` places `xen_wmb()`/`xen_mb()` and the consumer's `xen_rmb()`; here they are the
//! [`SharedIndices`] implementation's business, called at exactly those points:
//! - [`SharedIndices::write_barrier`] before publishing a producer index (the peer must see the
//!   entries before the index);
//! - [`SharedIndices::full_barrier`] after publishing a producer index and before reading the
//!   peer's event index, and after writing an event index before re-reading the producer index;
//! - [`SharedIndices::read_barrier`] after reading a producer index and before the caller reads
//!   the entries it covers.
//!
//! The defaults do nothing, which is right for single-threaded tests only.

// Xen's spelling of its own names.
#![allow(non_camel_case_types)]

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

#[cfg(test)]
mod tests;

/// `xen/include/public/io/ring.h`: `RING_IDX`, a free-running ring index.
pub type RING_IDX = u32;

/// `xen/include/public/io/ring.h`: the offset of `ring` in every `struct *_sring`: the size of
/// [`sring_header`].
pub const SRING_HEADER_SIZE: usize = 64;

/// `xen/include/public/io/ring.h`: the fixed head of `struct __name##_sring`, before the entry
/// array.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct sring_header {
    /// Requests produced (written by the front).
    pub req_prod: RING_IDX,
    /// The back wants a notification when `req_prod` passes this (written by the back).
    pub req_event: RING_IDX,
    /// Responses produced (written by the back).
    pub rsp_prod: RING_IDX,
    /// The front wants a notification when `rsp_prod` passes this (written by the front).
    pub rsp_event: RING_IDX,
    /// The `pvt` union (`netif.smartpoll_active`, `tapif_user.msg`, `pvt_pad[4]`), per-protocol.
    pub pvt: [u8; 4],
    /// `__pad[44]`, zero.
    pub __pad: [u8; 44],
}

impl Default for sring_header {
    /// All zero (indices, `pvt` and `__pad`), before [`shared_ring_init`].
    fn default() -> Self {
        Self::new_zeroed()
    }
}

/// `xen/include/public/io/ring.h`: `__CONST_RING_SIZE`: how many `entry`-byte entries a ring
/// of `page` bytes with a `header`-byte head holds, rounded down to a power of two as `__RD32`
/// does. 0 if nothing fits (or `entry` is 0). Agrees with `__RD32` for every count that fits
/// in 32 bits.
pub const fn ring_size(page: usize, header: usize, entry: usize) -> usize {
    if entry == 0 || page < header {
        return 0;
    }
    let n = (page - header) / entry;
    if n == 0 {
        0
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// The shared indices of one ring, however they are stored, and the barriers that order
/// accesses to them (see the module documentation for where each barrier is called).
pub trait SharedIndices {
    /// Reads `req_prod`.
    fn req_prod(&self) -> RING_IDX;
    /// Writes `req_prod`.
    fn set_req_prod(&mut self, v: RING_IDX);
    /// Reads `req_event`.
    fn req_event(&self) -> RING_IDX;
    /// Writes `req_event`.
    fn set_req_event(&mut self, v: RING_IDX);
    /// Reads `rsp_prod`.
    fn rsp_prod(&self) -> RING_IDX;
    /// Writes `rsp_prod`.
    fn set_rsp_prod(&mut self, v: RING_IDX);
    /// Reads `rsp_event`.
    fn rsp_event(&self) -> RING_IDX;
    /// Writes `rsp_event`.
    fn set_rsp_event(&mut self, v: RING_IDX);
    /// `xen_wmb()`: earlier stores become visible before later stores.
    fn write_barrier(&self) {}
    /// `xen_rmb()`: earlier loads complete before later loads.
    fn read_barrier(&self) {}
    /// `xen_mb()`: earlier loads and stores complete before later ones.
    fn full_barrier(&self) {}
}

impl SharedIndices for sring_header {
    fn req_prod(&self) -> RING_IDX {
        self.req_prod
    }
    fn set_req_prod(&mut self, v: RING_IDX) {
        self.req_prod = v;
    }
    fn req_event(&self) -> RING_IDX {
        self.req_event
    }
    fn set_req_event(&mut self, v: RING_IDX) {
        self.req_event = v;
    }
    fn rsp_prod(&self) -> RING_IDX {
        self.rsp_prod
    }
    fn set_rsp_prod(&mut self, v: RING_IDX) {
        self.rsp_prod = v;
    }
    fn rsp_event(&self) -> RING_IDX {
        self.rsp_event
    }
    fn set_rsp_event(&mut self, v: RING_IDX) {
        self.rsp_event = v;
    }
}

/// `xen/include/public/io/ring.h`: `SHARED_RING_INIT`'s indices: nothing produced, and each
/// side wants a notification for the first message. (The front initialises; zeroing `pvt` and
/// `__pad` is the caller's, with the rest of the page.)
pub fn shared_ring_init<S: SharedIndices>(s: &mut S) {
    s.set_req_prod(0);
    s.set_rsp_prod(0);
    s.set_req_event(1);
    s.set_rsp_event(1);
}

/// `xen/include/public/io/ring.h`: the decision of `RING_PUSH_*_AND_CHECK_NOTIFY`: the peer
/// asked to be told once the producer index passes `event`, and it moved from `old` to `new`.
pub const fn must_notify(old: RING_IDX, new: RING_IDX, event: RING_IDX) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

const fn checked_size(size: u32) -> u32 {
    assert!(size.is_power_of_two(), "a ring's size is a power of two");
    size
}

/// `xen/include/public/io/ring.h`: `struct __name##_front_ring` without its pointer: the
/// front end's private indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontRing {
    /// Requests produced locally, not necessarily pushed.
    pub req_prod_pvt: RING_IDX,
    /// Responses consumed.
    pub rsp_cons: RING_IDX,
    size: u32,
}

impl FrontRing {
    /// `FRONT_RING_INIT`: a fresh ring of `size` entries (a power of two; panics otherwise).
    pub const fn new(size: u32) -> Self {
        Self::attach(size, 0)
    }

    /// `FRONT_RING_ATTACH`: reattach to a ring whose indices all stand at `index`.
    pub const fn attach(size: u32, index: RING_IDX) -> Self {
        Self { req_prod_pvt: index, rsp_cons: index, size: checked_size(size) }
    }

    /// `RING_SIZE`.
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// The slot index `idx` names.
    pub const fn slot(&self, idx: RING_IDX) -> usize {
        (idx & (self.size - 1)) as usize
    }

    /// `RING_FREE_REQUESTS`: slots the front may still fill.
    pub const fn free_requests(&self) -> u32 {
        self.size.wrapping_sub(self.req_prod_pvt.wrapping_sub(self.rsp_cons))
    }

    /// `RING_FULL`.
    pub const fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Claims the next request slot (to be filled, then published by
    /// [`push_requests`](Self::push_requests)), or `None` if the ring is full.
    pub fn next_request(&mut self) -> Option<usize> {
        if self.is_full() {
            return None;
        }
        let slot = self.slot(self.req_prod_pvt);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Some(slot)
    }

    /// `RING_HAS_UNCONSUMED_RESPONSES` (`XEN_RING_NR_UNCONSUMED_RESPONSES`).
    pub fn unconsumed_responses<S: SharedIndices>(&self, s: &S) -> u32 {
        s.rsp_prod().wrapping_sub(self.rsp_cons)
    }

    /// `RING_RESPONSE_PROD_OVERFLOW`: could the back really have produced up to `prod`?
    pub const fn response_prod_overflow(&self, prod: RING_IDX) -> bool {
        prod.wrapping_sub(self.rsp_cons) > self.size
    }

    /// Takes the next response's slot (to be copied out before reuse), or `None` if none is
    /// published or none is owed (every request already answered). Calls the read barrier
    /// between reading `rsp_prod` and returning.
    pub fn next_response<S: SharedIndices>(&mut self, s: &S) -> Option<usize> {
        if self.unconsumed_responses(s) == 0 || self.rsp_cons == self.req_prod_pvt {
            return None;
        }
        s.read_barrier();
        let slot = self.slot(self.rsp_cons);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Some(slot)
    }

    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`: publish the requests produced so far; true if the
    /// back asked to be notified of them.
    pub fn push_requests<S: SharedIndices>(&self, s: &mut S) -> bool {
        let old = s.req_prod();
        let new = self.req_prod_pvt;
        s.write_barrier();
        s.set_req_prod(new);
        s.full_barrier();
        must_notify(old, new, s.req_event())
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: true if responses are waiting; otherwise ask to be
    /// notified of the next one and look once more (true: keep going; false: sleep).
    pub fn final_check_for_responses<S: SharedIndices>(&self, s: &mut S) -> bool {
        if self.unconsumed_responses(s) != 0 {
            return true;
        }
        s.set_rsp_event(self.rsp_cons.wrapping_add(1));
        s.full_barrier();
        self.unconsumed_responses(s) != 0
    }
}

/// `xen/include/public/io/ring.h`: `struct __name##_back_ring` without its pointer: the back
/// end's private indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackRing {
    /// Responses produced locally, not necessarily pushed.
    pub rsp_prod_pvt: RING_IDX,
    /// Requests consumed.
    pub req_cons: RING_IDX,
    size: u32,
}

impl BackRing {
    /// `BACK_RING_INIT`: a fresh ring of `size` entries (a power of two; panics otherwise).
    pub const fn new(size: u32) -> Self {
        Self::attach(size, 0)
    }

    /// `BACK_RING_ATTACH`: reattach to a ring whose indices all stand at `index`.
    pub const fn attach(size: u32, index: RING_IDX) -> Self {
        Self { rsp_prod_pvt: index, req_cons: index, size: checked_size(size) }
    }

    /// `RING_SIZE`.
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// The slot index `idx` names.
    pub const fn slot(&self, idx: RING_IDX) -> usize {
        (idx & (self.size - 1)) as usize
    }

    /// `RING_HAS_UNCONSUMED_REQUESTS` (`XEN_RING_NR_UNCONSUMED_REQUESTS`): requests published
    /// and not consumed, but no more than the slots the back has answered (a front pushing past
    /// a full ring cannot make the back read over its own unsent responses).
    pub fn unconsumed_requests<S: SharedIndices>(&self, s: &S) -> u32 {
        let req = s.req_prod().wrapping_sub(self.req_cons);
        let rsp = self.size.wrapping_sub(self.req_cons.wrapping_sub(self.rsp_prod_pvt));
        if req < rsp {
            req
        } else {
            rsp
        }
    }

    /// `RING_REQUEST_CONS_OVERFLOW`: would consuming at `cons` overrun the ring?
    pub const fn request_cons_overflow(&self, cons: RING_IDX) -> bool {
        cons.wrapping_sub(self.rsp_prod_pvt) >= self.size
    }

    /// `RING_REQUEST_PROD_OVERFLOW`: could the front really have produced up to `prod`?
    pub const fn request_prod_overflow(&self, prod: RING_IDX) -> bool {
        prod.wrapping_sub(self.rsp_prod_pvt) > self.size
    }

    /// Takes the next request's slot (copy it out before acting on it), or `None`. Calls the
    /// read barrier between reading `req_prod` and returning.
    pub fn next_request<S: SharedIndices>(&mut self, s: &S) -> Option<usize> {
        if self.unconsumed_requests(s) == 0 {
            return None;
        }
        s.read_barrier();
        let slot = self.slot(self.req_cons);
        self.req_cons = self.req_cons.wrapping_add(1);
        Some(slot)
    }

    /// Claims the slot for the next response (to be filled, then published by
    /// [`push_responses`](Self::push_responses)), or `None` if every consumed request is
    /// already answered.
    pub fn next_response(&mut self) -> Option<usize> {
        if self.rsp_prod_pvt == self.req_cons {
            return None;
        }
        let slot = self.slot(self.rsp_prod_pvt);
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Some(slot)
    }

    /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`: publish the responses produced so far; true if
    /// the front asked to be notified of them.
    pub fn push_responses<S: SharedIndices>(&self, s: &mut S) -> bool {
        let old = s.rsp_prod();
        let new = self.rsp_prod_pvt;
        s.write_barrier();
        s.set_rsp_prod(new);
        s.full_barrier();
        must_notify(old, new, s.rsp_event())
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: true if requests are waiting; otherwise ask to be
    /// notified of the next one and look once more (true: keep going; false: sleep).
    pub fn final_check_for_requests<S: SharedIndices>(&self, s: &mut S) -> bool {
        if self.unconsumed_requests(s) != 0 {
            return true;
        }
        s.set_req_event(self.req_cons.wrapping_add(1));
        s.full_barrier();
        self.unconsumed_requests(s) != 0
    }
}
