//! Host tests for the shared-ring index logic, against `xen/include/public/io/ring.h` of
//! Xen 4.17.

use super::*;

/// `__RD32` transcribed literally (test oracle for [`ring_size`]).
fn rd32(x: u32) -> u32 {
    fn rd2(x: u32) -> u32 {
        if x & 0x2 != 0 {
            0x2
        } else {
            x & 0x1
        }
    }
    fn rd4(x: u32) -> u32 {
        if x & 0xc != 0 {
            rd2(x >> 2) << 2
        } else {
            rd2(x)
        }
    }
    fn rd8(x: u32) -> u32 {
        if x & 0xf0 != 0 {
            rd4(x >> 4) << 4
        } else {
            rd4(x)
        }
    }
    fn rd16(x: u32) -> u32 {
        if x & 0xff00 != 0 {
            rd8(x >> 8) << 8
        } else {
            rd8(x)
        }
    }
    if x & 0xffff_0000 != 0 {
        rd16(x >> 16) << 16
    } else {
        rd16(x)
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn header_layout() {
    crate::xen::hypercall::assert_layout!(sring_header, size = 64, align = 4, {
        req_prod @ 0, req_event @ 4, rsp_prod @ 8, rsp_event @ 12, pvt @ 16, __pad @ 20,
    });
    assert_eq!(core::mem::size_of::<sring_header>(), SRING_HEADER_SIZE);
}

#[test]
fn sizes() {
    // blkif (112-byte entries), netif tx (12) and rx (8) on a 4 KiB page.
    assert_eq!(ring_size(4096, SRING_HEADER_SIZE, 112), 32);
    assert_eq!(ring_size(4096, SRING_HEADER_SIZE, 12), 256);
    assert_eq!(ring_size(4096, SRING_HEADER_SIZE, 8), 256);
    assert_eq!(ring_size(4096, SRING_HEADER_SIZE, 4032), 1);
    assert_eq!(ring_size(4096, SRING_HEADER_SIZE, 4033), 0);
    assert_eq!(ring_size(4096, SRING_HEADER_SIZE, 0), 0);
    assert_eq!(ring_size(32, SRING_HEADER_SIZE, 8), 0);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut samples: Vec<u32> = (0..=70_000).collect();
    samples.extend([u32::MAX, u32::MAX - 1, 0x8000_0000, 0x7FFF_FFFF, 0x1_0000, 0xFFFF]);
    samples.extend((0..100_000).map(|_| rng.next() as u32));
    for n in samples {
        assert_eq!(ring_size(n as usize, 0, 1), rd32(n) as usize, "n = {n:#x}");
    }
}

#[test]
#[should_panic]
fn size_must_be_power_of_two() {
    let _ = FrontRing::new(24);
}

#[test]
fn notify_decision() {
    // (old, new, event, notify): notify iff event is in (old, new], modulo 2^32.
    let cases = [
        (0, 1, 1, true),     // the consumer asked for the very next one
        (0, 5, 1, true),     // event just past old
        (0, 5, 5, true),     // event at new
        (0, 5, 3, true),     // event inside the batch
        (0, 5, 0, false),    // event at old: already told
        (3, 5, 1, false),    // event behind old
        (0, 5, 6, false),    // event ahead of new
        (0, 5, 1000, false), // far ahead
        (5, 5, 5, false),    // nothing new
        (5, 5, 6, false),    // nothing new
        (u32::MAX - 1, 2, 0, true),
        (u32::MAX - 1, 2, u32::MAX, true),
        (u32::MAX - 1, 2, 2, true),
        (u32::MAX - 1, 2, u32::MAX - 1, false),
        (u32::MAX - 1, 2, 3, false),
        (u32::MAX, 0, 0, true),
    ];
    for (old, new, event, want) in cases {
        assert_eq!(must_notify(old, new, event), want, "old {old} new {new} event {event}");
        // The same through both push paths.
        let mut s = sring_header { req_prod: old, req_event: event, ..Default::default() };
        let mut f = FrontRing::attach(8, old);
        f.req_prod_pvt = new;
        assert_eq!(f.push_requests(&mut s), want);
        assert_eq!(s.req_prod, new);
        let mut s = sring_header { rsp_prod: old, rsp_event: event, ..Default::default() };
        let mut b = BackRing::attach(8, old);
        b.rsp_prod_pvt = new;
        b.req_cons = new;
        assert_eq!(b.push_responses(&mut s), want);
        assert_eq!(s.rsp_prod, new);
    }
}

/// Brief check of the arithmetic with the literal C expression.
#[test]
fn notify_matches_c_expression() {
    let mut rng = XorShift(12345);
    for _ in 0..100_000 {
        let old = rng.next() as u32;
        let new = old.wrapping_add(rng.below(64) as u32);
        let event = old.wrapping_add(rng.below(200) as u32).wrapping_sub(100);
        let c = (new.wrapping_sub(event)) < (new.wrapping_sub(old));
        assert_eq!(must_notify(old, new, event), c);
        let in_range = event.wrapping_sub(old).wrapping_sub(1) < new.wrapping_sub(old);
        assert_eq!(c, in_range);
    }
}

fn init() -> sring_header {
    let mut s = sring_header::default();
    shared_ring_init(&mut s);
    s
}

#[test]
fn init_state() {
    let s = init();
    assert_eq!((s.req_prod, s.req_event, s.rsp_prod, s.rsp_event), (0, 1, 0, 1));
    let f = FrontRing::new(4);
    let b = BackRing::new(4);
    assert_eq!(f.free_requests(), 4);
    assert!(!f.is_full());
    assert_eq!(f.unconsumed_responses(&s), 0);
    assert_eq!(b.unconsumed_requests(&s), 0);
}

/// Fill, drain, answer and collect a ring, starting at `start` so indices cross `u32::MAX`.
fn full_and_empty(start: RING_IDX) {
    let mut s = sring_header { req_prod: start, rsp_prod: start, ..Default::default() };
    s.req_event = start.wrapping_add(1);
    s.rsp_event = start.wrapping_add(1);
    let mut f = FrontRing::attach(4, start);
    let mut b = BackRing::attach(4, start);
    let mut slots = Vec::new();
    while let Some(slot) = f.next_request() {
        slots.push(slot);
    }
    assert_eq!(slots.len(), 4);
    let mut sorted = slots.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 1, 2, 3]);
    assert!(f.is_full());
    assert_eq!(f.free_requests(), 0);
    assert_eq!(b.unconsumed_requests(&s), 0, "not yet pushed");
    assert!(f.push_requests(&mut s), "the back asked for the first request");
    assert!(!f.push_requests(&mut s), "nothing new");
    assert_eq!(b.unconsumed_requests(&s), 4);
    for &want in &slots {
        assert_eq!(b.next_request(&s), Some(want));
    }
    assert_eq!(b.next_request(&s), None);
    assert!(b.request_cons_overflow(b.req_cons));
    assert!(!b.request_prod_overflow(s.req_prod));
    assert!(b.request_prod_overflow(s.req_prod.wrapping_add(1)));
    assert!(!b.final_check_for_requests(&mut s));
    assert_eq!(s.req_event, b.req_cons.wrapping_add(1));
    // Answer two, then the rest.
    assert_eq!(b.next_response(), Some(slots[0]));
    assert_eq!(b.next_response(), Some(slots[1]));
    assert!(b.push_responses(&mut s), "the front asked for the first response");
    assert_eq!(f.unconsumed_responses(&s), 2);
    assert!(!f.response_prod_overflow(s.rsp_prod));
    assert_eq!(f.next_response(&s), Some(slots[0]));
    assert_eq!(f.free_requests(), 1);
    assert_eq!(b.next_response(), Some(slots[2]));
    assert_eq!(b.next_response(), Some(slots[3]));
    assert_eq!(b.next_response(), None, "every request answered");
    assert!(!b.push_responses(&mut s), "the front did not re-arm");
    assert_eq!(f.next_response(&s), Some(slots[1]));
    assert_eq!(f.next_response(&s), Some(slots[2]));
    assert_eq!(f.next_response(&s), Some(slots[3]));
    assert_eq!(f.next_response(&s), None);
    assert!(!f.final_check_for_responses(&mut s));
    assert_eq!(f.free_requests(), 4);
    assert_eq!(f.req_prod_pvt, start.wrapping_add(4));
    assert_eq!(b.req_cons, start.wrapping_add(4));
}

#[test]
fn full_and_empty_rings() {
    full_and_empty(0);
    full_and_empty(u32::MAX - 1);
    full_and_empty(u32::MAX);
    full_and_empty(u32::MAX - 3);
}

#[test]
fn wrap_around_at_u32_max() {
    let start = u32::MAX - 2;
    let mut s = sring_header { req_prod: start, rsp_prod: start, ..Default::default() };
    s.req_event = start.wrapping_add(1);
    let mut f = FrontRing::attach(8, start);
    let b = BackRing::attach(8, start);
    for _ in 0..6 {
        f.next_request().unwrap();
    }
    assert_eq!(f.req_prod_pvt, 3);
    assert_eq!(f.free_requests(), 2);
    assert!(f.push_requests(&mut s));
    assert_eq!(b.unconsumed_requests(&s), 6);
    assert_eq!(f.slot(start), 5);
    assert_eq!(f.slot(u32::MAX), 7);
    assert_eq!(f.slot(0), 0);
}

#[test]
fn misbehaving_peers_are_bounded() {
    let mut s = init();
    let mut f = FrontRing::new(4);
    let mut b = BackRing::new(4);
    // A front claiming far more requests than the ring holds: the back sees at most a ring.
    s.req_prod = 1000;
    assert!(b.request_prod_overflow(s.req_prod));
    assert_eq!(b.unconsumed_requests(&s), 4);
    for _ in 0..4 {
        assert!(b.next_request(&s).is_some());
    }
    assert_eq!(b.next_request(&s), None, "no more until responses are produced");
    // A back publishing responses the front never asked for.
    s.rsp_prod = 7;
    assert!(f.response_prod_overflow(s.rsp_prod));
    assert_eq!(f.next_response(&s), None, "no request outstanding");
    f.next_request().unwrap();
    assert!(f.next_response(&s).is_some());
    assert_eq!(f.next_response(&s), None);
    assert_eq!(f.free_requests(), 4);
}

/// One run of a random producer/consumer pair over one shared ring, entries in one array as in
/// C (a request's slot is reused for its response).
fn random_run(seed: u64, size: u32, start: RING_IDX, steps: usize) {
    let mut rng = XorShift(seed);
    let mut s = sring_header { req_prod: start, rsp_prod: start, ..Default::default() };
    s.req_event = start.wrapping_add(1);
    s.rsp_event = start.wrapping_add(1);
    let mut ring = vec![0u64; size as usize];
    let mut f = FrontRing::attach(size, start);
    let mut b = BackRing::attach(size, start);
    // Requests carry 1, 2, 3, ...; a response carries its request's value with the top bit set.
    let (mut next_req, mut next_back, mut next_rsp) = (1u64, 1u64, 1u64);
    let mut back_asleep = true;
    let mut front_waiting = false;
    let (mut req_notifies, mut rsp_notifies) = (0u32, 0u32);
    for _ in 0..steps {
        match rng.below(4) {
            0 | 1 => {
                // Front: produce a batch, push, maybe notify; consume responses now and then.
                let n = rng.below(u64::from(size) + 2);
                let mut produced = 0;
                for _ in 0..n {
                    let Some(slot) = f.next_request() else { break };
                    ring[slot] = next_req;
                    next_req += 1;
                    produced += 1;
                }
                let notify = f.push_requests(&mut s);
                if produced > 0 && back_asleep {
                    assert!(notify, "a sleeping back must be notified");
                }
                if produced == 0 {
                    assert!(!notify, "no notification without new requests");
                }
                if notify {
                    req_notifies += 1;
                    back_asleep = false;
                }
                if rng.below(2) == 0 {
                    while let Some(slot) = f.next_response(&s) {
                        assert_eq!(ring[slot], next_rsp | 1 << 63, "response lost or repeated");
                        next_rsp += 1;
                    }
                    front_waiting = !f.final_check_for_responses(&mut s);
                }
            }
            _ => {
                if back_asleep {
                    continue;
                }
                // Back: consume some requests, answer some, push, maybe notify, maybe sleep.
                let n = rng.below(u64::from(size) + 2);
                for _ in 0..n {
                    let Some(slot) = b.next_request(&s) else { break };
                    assert_eq!(ring[slot], next_back, "request lost or repeated");
                    next_back += 1;
                }
                let answer = rng.below(u64::from(size) + 2);
                let mut answered = 0;
                for _ in 0..answer {
                    let Some(slot) = b.next_response() else { break };
                    ring[slot] |= 1 << 63;
                    answered += 1;
                }
                let notify = b.push_responses(&mut s);
                if answered > 0 && front_waiting {
                    assert!(notify, "a waiting front must be notified");
                }
                if notify {
                    rsp_notifies += 1;
                    front_waiting = false;
                }
                if b.rsp_prod_pvt == b.req_cons && !b.final_check_for_requests(&mut s) {
                    back_asleep = true;
                }
            }
        }
        // No lost wake-up: a sleeping back has nothing to do; a waiting front nothing to read.
        if back_asleep {
            assert_eq!(b.unconsumed_requests(&s), 0);
            assert_eq!(b.rsp_prod_pvt, b.req_cons);
        }
        if front_waiting {
            assert_eq!(f.unconsumed_responses(&s), 0);
        }
        assert!(f.free_requests() <= size);
    }
    // Drain: everything pushed comes through exactly once.
    while let Some(slot) = b.next_request(&s) {
        assert_eq!(ring[slot], next_back);
        next_back += 1;
    }
    while let Some(slot) = b.next_response() {
        ring[slot] |= 1 << 63;
    }
    b.push_responses(&mut s);
    while let Some(slot) = f.next_response(&s) {
        assert_eq!(ring[slot], next_rsp | 1 << 63);
        next_rsp += 1;
    }
    assert_eq!(next_back, next_req);
    assert_eq!(next_rsp, next_req);
    assert_eq!(f.free_requests(), size);
    assert!(next_req > 1 && req_notifies > 0 && rsp_notifies > 0);
}

#[test]
fn random_producer_consumer() {
    let mut seeds = XorShift(0xDEAD_BEEF_CAFE_F00D);
    for round in 0..200 {
        let size = 1 << (round % 6);
        let start = match round % 3 {
            0 => 0,
            1 => u32::MAX - (seeds.below(64) as u32),
            _ => seeds.next() as u32,
        };
        random_run(seeds.next() | 1, size, start, 2_000);
    }
}
