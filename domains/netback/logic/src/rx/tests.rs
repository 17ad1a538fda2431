//! Each rule of [`place`]'s layout, one per test, and random packets against the invariants.
use super::*;
use crate::test_rng::Xorshift;
use alloc::vec;
use xenolith_abi::xen::netif::{XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_GSO_TYPE_TCPV4};

const SIZE: u32 = 256;

/// Places `meta` on a ring whose requests from `cons` are `ids` (gref = 100 + id), recording
/// every slot read.
fn run(
    cons: RING_IDX,
    prod: RING_IDX,
    ids: &[u16],
    meta: &RxMeta,
    sg: bool,
) -> (Result<RxVerdict, RxFatal>, Vec<RING_IDX>) {
    let mut reads = Vec::new();
    let verdict = place(SIZE, cons, prod, meta, sg, |index| {
        reads.push(index);
        let at = index.wrapping_sub(cons) as usize;
        let id = *ids.get(at).expect("never read past what was posted");
        request_bytes(&netif_rx_request { id, pad: 0, gref: 100 + u32::from(id) })
    });
    (verdict, reads)
}

fn placed(verdict: Result<RxVerdict, RxFatal>) -> Placement {
    match verdict {
        Ok(RxVerdict::Placed(placement)) => placement,
        other => panic!("not placed: {other:?}"),
    }
}

fn data(response: &RxResponse) -> netif_rx_response {
    match response {
        RxResponse::Data(data) => *data,
        RxResponse::Extra(extra) => panic!("an extra-info slot where data was due: {extra:?}"),
    }
}

fn meta(len: usize) -> RxMeta {
    RxMeta { len, ..RxMeta::default() }
}

const GSO: Gso = Gso { size: 1448, r#type: XEN_NETIF_GSO_TYPE_TCPV4, features: 0 };

#[test]
fn a_small_packet_takes_one_slot_at_offset_zero() {
    let (verdict, reads) = run(7, 9, &[4, 5], &meta(60), false);
    let placement = placed(verdict);
    assert_eq!(reads, [7]);
    assert_eq!(
        placement.copies,
        [RxCopy { gref: 104, dest_offset: 0, packet_offset: 0, len: 60, response: 0 }]
    );
    assert_eq!(
        placement.responses,
        [RxResponse::Data(netif_rx_response { id: 4, offset: 0, flags: 0, status: 60 })]
    );
    assert_eq!(placement.advance(7), (8, 8));
}

#[test]
fn a_large_packet_fills_pages_with_more_data_on_all_but_the_last() {
    let placement = placed(run(0, 5, &[10, 11, 12, 13, 14], &meta(2 * 4096 + 100), true).0);
    assert_eq!(placement.slots, 3);
    let responses: Vec<_> = placement.responses.iter().map(data).collect();
    assert_eq!(
        responses.iter().map(|r| (r.id, r.flags, r.status)).collect::<Vec<_>>(),
        [(10, NETRXF_more_data, 4096), (11, NETRXF_more_data, 4096), (12, 0, 100)]
    );
    assert!(responses.iter().all(|r| r.offset == 0));
    assert_eq!(
        placement.copies.iter().map(|c| (c.gref, c.packet_offset, c.len)).collect::<Vec<_>>(),
        [(110, 0, 4096), (111, 4096, 4096), (112, 8192, 100)]
    );
    assert_eq!(placement.advance(0), (3, 3));
}

#[test]
fn the_gso_slot_goes_after_the_first_data_slot() {
    let gso = RxMeta { gso: Some(GSO), ..meta(4096 + 1000) };
    let (verdict, reads) = run(0, 3, &[1, 2, 3], &gso, true);
    let placement = placed(verdict);
    assert_eq!(placement.slots, 3);
    // The extra-info slot's request is consumed but not read: its response is the extra.
    assert_eq!(reads, [0, 2]);
    let first = data(&placement.responses[0]);
    assert_eq!(
        (first.id, first.flags, first.status),
        (1, NETRXF_more_data | NETRXF_extra_info, 4096)
    );
    let RxResponse::Extra(extra) = placement.responses[1] else { panic!("no extra slot") };
    assert_eq!((extra.r#type, extra.flags, extra.gso()), (XEN_NETIF_EXTRA_TYPE_GSO, 0, GSO));
    let last = data(&placement.responses[2]);
    assert_eq!((last.id, last.flags, last.status), (3, 0, 1000));
    assert_eq!(placement.copies.iter().map(|c| c.response).collect::<Vec<_>>(), [0, 2]);
    // A one-page GSO packet: extra_info without more_data, then the extra slot.
    let small = RxMeta { gso: Some(GSO), ..meta(1000) };
    let placement = placed(run(0, 2, &[1, 2], &small, true).0);
    assert_eq!(data(&placement.responses[0]).flags, NETRXF_extra_info);
    assert!(matches!(placement.responses[1], RxResponse::Extra(_)));
}

#[test]
fn checksum_flags_are_on_the_first_response_only() {
    let cases = [
        (false, false, 0),
        (false, true, NETRXF_data_validated),
        (true, false, NETRXF_csum_blank | NETRXF_data_validated),
        (true, true, NETRXF_csum_blank | NETRXF_data_validated),
    ];
    for (csum_blank, data_validated, want) in cases {
        let packet = RxMeta { csum_blank, data_validated, ..meta(5000) };
        let placement = placed(run(0, 2, &[1, 2], &packet, true).0);
        assert_eq!(data(&placement.responses[0]).flags, want | NETRXF_more_data);
        assert_eq!(data(&placement.responses[1]).flags, 0);
    }
}

#[test]
fn too_few_requests_wait_and_nothing_is_read() {
    let gso = RxMeta { gso: Some(GSO), ..meta(5000) };
    let (verdict, reads) = run(0, 2, &[1, 2], &gso, true);
    assert_eq!(verdict, Ok(RxVerdict::NoRoom { needed: 3, posted: 2 }));
    assert!(reads.is_empty());
    assert_eq!(run(4, 4, &[], &meta(60), true).0, Ok(RxVerdict::NoRoom { needed: 1, posted: 0 }));
}

#[test]
fn packets_no_frontend_can_take_are_unplaceable() {
    assert_eq!(slots_needed(&meta(0), true), Err(Unplaceable::Empty));
    assert_eq!(slots_needed(&meta(4096), false), Ok(1));
    assert_eq!(
        slots_needed(&meta(4097), false),
        Err(Unplaceable::NeedsScatterGather { len: 4097 })
    );
    let longest = MAX_DATA_SLOTS as usize * 4096;
    assert_eq!(slots_needed(&meta(longest), true), Ok(MAX_DATA_SLOTS));
    assert_eq!(
        slots_needed(&RxMeta { gso: Some(GSO), ..meta(longest) }, true),
        Ok(MAX_DATA_SLOTS + 1)
    );
    assert_eq!(
        slots_needed(&meta(longest + 1), true),
        Err(Unplaceable::TooLong { len: longest + 1 })
    );
    let (verdict, reads) = run(0, 1, &[1], &meta(5000), false);
    assert_eq!(verdict, Ok(RxVerdict::Unplaceable(Unplaceable::NeedsScatterGather { len: 5000 })));
    assert!(reads.is_empty());
}

#[test]
fn a_producer_more_than_a_ring_ahead_is_fatal() {
    let fatal = |cons: RING_IDX, prod: RING_IDX| run(cons, prod, &[], &meta(60), true).0;
    assert_eq!(fatal(10, 10 + SIZE + 1), Err(RxFatal::ImpossibleProducer { prod: 267, cons: 10 }));
    // Behind the consumer reads as four billion ahead.
    assert!(matches!(fatal(10, 9), Err(RxFatal::ImpossibleProducer { .. })));
    // Exactly a ring ahead is a full ring, not an error.
    let full: Vec<u16> = (0..SIZE as u16).collect();
    assert!(matches!(run(10, 10 + SIZE, &full, &meta(60), true).0, Ok(RxVerdict::Placed(_))));
}

#[test]
fn copies_split_where_the_packets_buffer_crosses_a_page() {
    // The packet starts 100 bytes before the end of its buffer's first page.
    let packet = RxMeta { source_offset: 3996, ..meta(4296) };
    let placement = placed(run(0, 2, &[1, 2], &packet, true).0);
    assert_eq!(
        placement
            .copies
            .iter()
            .map(|c| (c.gref, c.dest_offset, c.packet_offset, c.len, c.response))
            .collect::<Vec<_>>(),
        [
            (101, 0, 0, 100, 0),
            (101, 100, 100, 3996, 0),
            (102, 0, 4096, 100, 1),
            (102, 100, 4196, 100, 1),
        ]
    );
    assert_eq!(data(&placement.responses[0]).status, 4096);
}

#[test]
fn indices_wrap() {
    let cons = u32::MAX;
    let (verdict, reads) = run(cons, cons.wrapping_add(2), &[1, 2], &meta(5000), true);
    assert_eq!(reads, [u32::MAX, 0]);
    assert_eq!(placed(verdict).advance(cons), (1, 1));
}

/// Every copy, response and read of a placement, checked against the module's invariants.
fn check(meta: &RxMeta, cons: RING_IDX, ids: &[u16], reads: &[RING_IDX], placement: &Placement) {
    let needed = slots_needed(meta, true).expect("placeable");
    assert_eq!(placement.slots, needed);
    assert_eq!(placement.responses.len(), needed as usize);
    let mut read_sorted = reads.to_vec();
    read_sorted.dedup();
    assert_eq!(read_sorted.len(), reads.len(), "a slot read twice");
    assert!(reads.iter().all(|&i| i.wrapping_sub(cons) < needed));
    let mut next = 0;
    let mut status = vec![0usize; placement.responses.len()];
    for copy in &placement.copies {
        assert_eq!(copy.packet_offset, next, "copies cover the packet in order");
        assert!(copy.len > 0);
        assert!(usize::from(copy.dest_offset) + usize::from(copy.len) <= PAGE_SIZE);
        let source = meta.source_offset + copy.packet_offset;
        assert_eq!(source / PAGE_SIZE, (source + usize::from(copy.len) - 1) / PAGE_SIZE);
        let at = copy.response as usize;
        assert_eq!(usize::from(copy.dest_offset), status[at], "each slot is filled from 0");
        status[at] += usize::from(copy.len);
        let RxResponse::Data(response) = placement.responses[at] else { panic!("copy to extra") };
        assert_eq!(copy.gref, 100 + u32::from(response.id));
        next += usize::from(copy.len);
    }
    assert_eq!(next, meta.len);
    let data_responses: Vec<(usize, netif_rx_response)> = placement
        .responses
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            RxResponse::Data(d) => Some((i, *d)),
            RxResponse::Extra(_) => None,
        })
        .collect();
    for (n, &(at, response)) in data_responses.iter().enumerate() {
        assert_eq!(response.status as usize, status[at]);
        assert_eq!(response.id, ids[at], "the response is in its request's slot");
        let last = n + 1 == data_responses.len();
        assert_eq!(response.flags & NETRXF_more_data != 0, !last);
        assert!(last || response.status as usize == PAGE_SIZE);
    }
    let extras = placement.responses.len() - data_responses.len();
    assert_eq!(extras, usize::from(meta.gso.is_some()));
    if meta.gso.is_some() {
        assert!(matches!(placement.responses[1], RxResponse::Extra(_)));
    }
}

#[test]
fn random_packets_keep_the_invariants() {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut next = || rng.next();
    for _ in 0..5_000 {
        let len = 1 + (next() % (MAX_DATA_SLOTS as u64 * 4096 + 2000)) as usize;
        let packet = RxMeta {
            len,
            source_offset: (next() % 4096) as usize,
            csum_blank: next() % 2 == 0,
            data_validated: next() % 2 == 0,
            gso: (next() % 3 == 0).then_some(GSO),
        };
        let posted = (next() % 24) as u32;
        let ids: Vec<u16> = (0..posted).map(|_| next() as u16).collect();
        let cons = next() as u32;
        let (verdict, reads) = run(cons, cons.wrapping_add(posted), &ids, &packet, true);
        match verdict {
            Ok(RxVerdict::Placed(placement)) => check(&packet, cons, &ids, &reads, &placement),
            Ok(RxVerdict::NoRoom { needed, posted: p }) => {
                assert!(p < needed && reads.is_empty());
            }
            Ok(RxVerdict::Unplaceable(Unplaceable::TooLong { .. })) => {
                assert!(len > MAX_DATA_SLOTS as usize * 4096);
            }
            other => panic!("{other:?}"),
        }
    }
}
