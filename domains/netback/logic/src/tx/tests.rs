//! Each outcome of [`next_packet`], one frontend behaviour per test.
use super::*;
use crate::test_rng::Xorshift;
use xenolith_abi::xen::netif::{Gso, XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_GSO_TYPE_TCPV4};

const SIZE: u32 = 256;

/// A ring of `slots` from `cons`, read as netback reads it.
fn run(cons: RING_IDX, prod: RING_IDX, slots: &[[u8; 12]]) -> Result<Verdict, Fatal> {
    next_packet(SIZE, cons, prod, |index| {
        let at = index.wrapping_sub(cons) as usize;
        *slots.get(at).expect("never read past what was produced")
    })
}

fn req(id: u16, offset: u16, size: u16, flags: u16) -> [u8; 12] {
    slot_bytes(&netif_tx_request { gref: 7, offset, flags, id, size })
}

fn extra(r#type: u8, more: bool) -> [u8; 12] {
    let mut bytes = [0; 12];
    let mut info = netif_extra_info::new_gso(
        Gso { size: 1448, r#type: XEN_NETIF_GSO_TYPE_TCPV4, features: 0 },
        more,
    );
    info.r#type = r#type;
    bytes[..8].copy_from_slice(info.as_bytes());
    bytes
}

#[test]
fn an_empty_ring_and_a_one_slot_packet() {
    assert_eq!(run(5, 5, &[]), Ok(Verdict::Empty));
    let Ok(Verdict::Packet(packet)) = run(5, 6, &[req(1, 100, 60, 0)]) else { panic!() };
    assert_eq!((packet.first.size, packet.slots, packet.fragments.len()), (60, 1, 0));
}

#[test]
fn fragments_and_a_gso_slot_make_one_packet_across_the_index_wrap() {
    let slots = [
        req(1, 0, 3000, NETTXF_extra_info | NETTXF_more_data),
        extra(XEN_NETIF_EXTRA_TYPE_GSO, false),
        req(2, 0, 1000, NETTXF_more_data),
        req(3, 96, 1000, 0),
    ];
    let cons = u32::MAX - 1;
    let Ok(Verdict::Packet(packet)) = run(cons, cons.wrapping_add(4), &slots) else { panic!() };
    assert_eq!(packet.slots, 4);
    assert_eq!(packet.fragments.iter().map(|f| f.id).collect::<Vec<_>>(), [2, 3]);
    let gso = packet.extras[XEN_NETIF_EXTRA_TYPE_GSO as usize - 1].expect("gso").gso();
    assert_eq!(gso.size, 1448);
}

#[test]
fn a_producer_more_than_a_ring_ahead_is_fatal() {
    assert_eq!(run(10, 10 + SIZE + 1, &[]), Err(Fatal::ImpossibleProducer { prod: 267, cons: 10 }));
    // Behind the consumer reads as four billion ahead.
    assert!(matches!(run(10, 9, &[]), Err(Fatal::ImpossibleProducer { .. })));
}

#[test]
fn a_packet_running_past_the_producer_is_fatal() {
    let slots = [req(1, 0, 200, NETTXF_more_data), req(2, 0, 100, NETTXF_more_data)];
    assert_eq!(run(0, 2, &slots), Err(Fatal::Truncated { slots: 3 }));
    let missing_extra = [req(1, 0, 200, NETTXF_extra_info)];
    assert_eq!(run(0, 1, &missing_extra), Err(Fatal::Truncated { slots: 2 }));
}

#[test]
fn extra_info_of_no_known_type_is_fatal() {
    for bad in [XEN_NETIF_EXTRA_TYPE_NONE, XEN_NETIF_EXTRA_TYPE_MAX, 0xff] {
        let slots = [req(1, 0, 200, NETTXF_extra_info), extra(bad, false)];
        assert_eq!(run(0, 2, &slots), Err(Fatal::BadExtraType { r#type: bad }));
    }
    // A chain of extra-info slots longer than there are types.
    let mut slots = vec![req(1, 0, 200, NETTXF_extra_info)];
    slots.extend((0..8).map(|_| extra(XEN_NETIF_EXTRA_TYPE_GSO, true)));
    assert!(matches!(run(0, 9, &slots), Err(Fatal::TooManySlots { .. })));
}

#[test]
fn a_fragment_larger_than_what_is_left_is_fatal() {
    // XSA-90/228's class: sizes that would underflow the first slot's share.
    let slots =
        [req(1, 0, 1000, NETTXF_more_data), req(2, 0, 800, NETTXF_more_data), req(3, 0, 300, 0)];
    assert_eq!(run(0, 3, &slots), Err(Fatal::FragmentTooLarge { size: 300, remaining: 200 }));
}

#[test]
fn data_crossing_its_page_is_fatal() {
    let slots = [req(1, 0, 5000, NETTXF_more_data), req(2, 4000, 200, 0)];
    assert_eq!(run(0, 2, &slots), Err(Fatal::CrossesPage { offset: 4000, size: 200 }));
    // The first slot's share (size minus the fragments') crossing its page.
    let slots = [req(1, 4000, 300, NETTXF_more_data), req(2, 0, 100, 0)];
    assert_eq!(run(0, 2, &slots), Err(Fatal::CrossesPage { offset: 4000, size: 200 }));
}

#[test]
fn too_many_fragments_are_dropped_then_fatal() {
    // The first request plus `n` fragments of 100 bytes each, the first keeping 100.
    let packet = |n: u16| {
        let mut slots = vec![req(0, 0, 100 * (n + 1), NETTXF_more_data)];
        for id in 1..=n {
            let flags = if id < n { NETTXF_more_data } else { 0 };
            slots.push(req(id, 0, 100, flags));
        }
        slots
    };
    let ok = packet(LEGACY_SLOTS_MAX as u16);
    assert!(matches!(run(0, ok.len() as u32, &ok), Ok(Verdict::Packet(_))));
    let dropped = packet(LEGACY_SLOTS_MAX as u16 + 1);
    let Ok(Verdict::Drop { ids, slots }) = run(0, dropped.len() as u32, &dropped) else { panic!() };
    assert_eq!((ids.len(), slots), (dropped.len(), dropped.len() as u32));
    let fatal = packet(FATAL_SLOTS as u16 + 1);
    assert_eq!(
        run(0, fatal.len() as u32, &fatal),
        Err(Fatal::TooManySlots { slots: FATAL_SLOTS + 1 })
    );
}

#[test]
fn a_first_slot_shorter_than_an_ethernet_header_is_dropped() {
    let Ok(Verdict::Drop { ids, slots }) = run(0, 1, &[req(9, 0, 10, 0)]) else { panic!() };
    assert_eq!((ids, slots), (vec![9], 1));
}

#[test]
fn random_rings_never_panic_or_read_past_the_producer() {
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    let mut next = || rng.next();
    for _ in 0..20_000 {
        let produced = (next() % 24) as u32;
        let slots: Vec<[u8; 12]> = (0..produced)
            .map(|_| {
                let mut bytes = [0u8; 12];
                for byte in &mut bytes {
                    *byte = next() as u8;
                }
                // Mostly plausible flags, so that chains get long.
                bytes[6] &= 0x0f;
                bytes
            })
            .collect();
        let cons = next() as u32;
        let _ = run(cons, cons.wrapping_add(produced), &slots);
    }
}
