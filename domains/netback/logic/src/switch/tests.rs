//! Learning, routing, eviction and the preserved encoding, one behaviour per test.
use super::*;
use crate::test_rng::Xorshift;
use alloc::vec;

const A: VifId = VifId { domain: 1, devid: 0 };
const B: VifId = VifId { domain: 2, devid: 0 };
const C: VifId = VifId { domain: 2, devid: 1 };

fn mac(last: u8) -> [u8; 6] {
    [0x00, 0x16, 0x3e, 0, 0, last]
}

fn all() -> impl Iterator<Item = VifId> {
    [A, B, C].into_iter()
}

#[test]
fn unknown_destinations_flood_and_learned_ones_are_unicast() {
    let mut switch = Switch::new(8);
    assert_eq!(switch.route(mac(2), A, all()), Route::Flood(vec![B, C]));
    switch.learn(mac(2), B);
    assert_eq!(switch.route(mac(2), A, all()), Route::Unicast(B));
    assert_eq!(switch.route(mac(2), C, all()), Route::Unicast(B));
}

#[test]
fn group_destinations_flood_to_all_but_the_sender() {
    let mut switch = Switch::new(8);
    let broadcast = [0xff; 6];
    let multicast = [0x01, 0x00, 0x5e, 0, 0, 1];
    // Even if someone claimed it as a source.
    switch.learn(multicast, C);
    assert_eq!(switch.route(broadcast, B, all()), Route::Flood(vec![A, C]));
    assert_eq!(switch.route(multicast, A, all()), Route::Flood(vec![B, C]));
}

#[test]
fn group_and_zero_sources_are_never_learned() {
    let mut switch = Switch::new(8);
    for source in [[0xff; 6], [0x33, 0x33, 0, 0, 0, 1], [0x01, 0x80, 0xc2, 0, 0, 0], [0; 6]] {
        switch.learn(source, A);
    }
    assert!(switch.is_empty());
    // A locally administered unicast address is a station's.
    switch.learn([0x02, 0, 0, 0, 0, 1], A);
    assert_eq!(switch.lookup([0x02, 0, 0, 0, 0, 1]), Some(A));
}

#[test]
fn a_frame_to_the_senders_own_vif_is_dropped() {
    let mut switch = Switch::new(8);
    switch.learn(mac(1), A);
    assert_eq!(switch.route(mac(1), A, all()), Route::Drop);
}

#[test]
fn a_moved_address_is_relearned() {
    let mut switch = Switch::new(8);
    switch.learn(mac(1), A);
    switch.learn(mac(1), C);
    assert_eq!(switch.len(), 1);
    assert_eq!(switch.route(mac(1), B, all()), Route::Unicast(C));
    assert_eq!(switch.route(mac(1), C, all()), Route::Drop);
}

#[test]
fn forgetting_a_vif_drops_its_addresses_only() {
    let mut switch = Switch::new(8);
    switch.learn(mac(1), A);
    switch.learn(mac(2), B);
    switch.learn(mac(3), B);
    switch.forget(B);
    assert_eq!(
        (switch.lookup(mac(1)), switch.lookup(mac(2)), switch.lookup(mac(3))),
        (Some(A), None, None)
    );
    assert_eq!(switch.route(mac(2), A, all()), Route::Flood(vec![B, C]));
    // Its slots are free again: three more fit a table of three without evicting A's.
    let mut small = Switch::new(3);
    small.learn(mac(1), A);
    small.learn(mac(2), B);
    small.learn(mac(3), B);
    small.forget(B);
    small.learn(mac(4), C);
    small.learn(mac(5), C);
    assert_eq!(small.lookup(mac(1)), Some(A));
}

#[test]
fn a_destination_on_a_vif_that_is_gone_floods() {
    let mut switch = Switch::new(8);
    switch.learn(mac(9), VifId { domain: 7, devid: 0 });
    assert_eq!(switch.route(mac(9), A, all()), Route::Flood(vec![B, C]));
}

#[test]
fn a_full_table_evicts_the_least_recently_learned() {
    let mut switch = Switch::new(3);
    switch.learn(mac(1), A);
    switch.learn(mac(2), B);
    switch.learn(mac(3), C);
    // Seen again: mac(1) is now the newest.
    switch.learn(mac(1), A);
    switch.learn(mac(4), A);
    assert_eq!(switch.len(), 3);
    assert_eq!(switch.lookup(mac(2)), None, "the oldest went");
    assert_eq!(
        (switch.lookup(mac(1)), switch.lookup(mac(3)), switch.lookup(mac(4))),
        (Some(A), Some(C), Some(A))
    );
    // A table of no entries learns nothing.
    let mut none = Switch::new(0);
    none.learn(mac(1), A);
    assert!(none.is_empty());
}

fn encoded(switch: &Switch) -> Vec<u8> {
    let mut bytes = Vec::new();
    switch.encode(&mut bytes);
    bytes
}

#[test]
fn the_encoding_round_trips_and_keeps_ages() {
    let mut switch = Switch::new(3);
    switch.learn(mac(3), C);
    switch.learn(mac(1), A);
    switch.learn(mac(2), B);
    let bytes = encoded(&switch);
    assert_eq!(bytes.len(), FIXED + 3 * ENTRY);
    assert_eq!(&bytes[..9], &[1, 3, 0, 0, 0, 3, 0, 0, 0]);
    let mut restored = Switch::decode(&bytes).unwrap();
    assert_eq!(restored, switch);
    // The restored table evicts the same entry the original would.
    restored.learn(mac(4), A);
    switch.learn(mac(4), A);
    assert_eq!(restored, switch);
    assert_eq!(restored.lookup(mac(3)), None);
    assert_eq!(Switch::decode(&encoded(&Switch::new(5))), Ok(Switch::new(5)));
}

#[test]
fn tables_encode_could_not_write_are_refused() {
    let mut switch = Switch::new(2);
    switch.learn(mac(1), A);
    switch.learn(mac(2), B);
    let bytes = encoded(&switch);
    let decode = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut copy = bytes.clone();
        edit(&mut copy);
        Switch::decode(&copy)
    };
    assert_eq!(decode(&|b| b[0] = 2), Err(DecodeError::Version(2)));
    assert_eq!(decode(&|b| b.truncate(b.len() - 1)), Err(DecodeError::Truncated));
    assert!(matches!(decode(&|b| b.push(0)), Err(DecodeError::Invalid(_))));
    // Capacity 1 with two entries.
    assert!(matches!(decode(&|b| b[1] = 1), Err(DecodeError::Invalid(_))));
    // A group address (first entry's first octet).
    assert!(matches!(decode(&|b| b[FIXED] = 1), Err(DecodeError::Invalid(_))));
    // Entries out of order: swap the two addresses.
    let swap = |b: &mut Vec<u8>| {
        let first: Vec<u8> = b[FIXED..FIXED + 6].to_vec();
        b.copy_within(FIXED + ENTRY..FIXED + ENTRY + 6, FIXED);
        b[FIXED + ENTRY..FIXED + ENTRY + 6].copy_from_slice(&first);
    };
    assert!(matches!(decode(&swap), Err(DecodeError::Invalid(_))));
    // Both entries of one age; an age at the clock.
    let stamp = FIXED + 12;
    assert!(matches!(decode(&|b| b[stamp] = b[stamp + ENTRY]), Err(DecodeError::Invalid(_))));
    assert!(matches!(decode(&|b| b[9] = 1), Err(DecodeError::Invalid(_))));
    // A count far beyond the bytes is refused before anything is allocated for it.
    let huge = |b: &mut Vec<u8>| {
        b[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        b[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
    };
    assert_eq!(decode(&huge), Err(DecodeError::Truncated));
}

#[test]
fn a_clock_at_its_end_renumbers_instead_of_overflowing() {
    let mut switch = Switch::new(2);
    switch.learn(mac(1), A);
    switch.learn(mac(2), B);
    let mut bytes = encoded(&switch);
    // Clock u64::MAX, ages MAX-2 and MAX-1 (mac(1) older).
    bytes[9..17].copy_from_slice(&u64::MAX.to_le_bytes());
    bytes[FIXED + 12..FIXED + 20].copy_from_slice(&(u64::MAX - 2).to_le_bytes());
    bytes[FIXED + ENTRY + 12..FIXED + ENTRY + 20].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    let mut late = Switch::decode(&bytes).unwrap();
    late.learn(mac(3), C);
    assert_eq!(
        (late.lookup(mac(1)), late.lookup(mac(2)), late.lookup(mac(3))),
        (None, Some(B), Some(C))
    );
    assert!(Switch::decode(&encoded(&late)).is_ok());
}

#[test]
fn random_bytes_and_random_traffic_never_break_it() {
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    let vifs = [A, B, C, VifId { domain: 3, devid: 0 }];
    let mut switch = Switch::new(16);
    for round in 0..20_000 {
        let source = [(rng.next() as u8) & 0x03, 0, 0, 0, 0, (rng.next() % 40) as u8];
        let from = vifs[(rng.next() % 4) as usize];
        switch.learn(source, from);
        let dst = [(rng.next() as u8) & 0x03, 0, 0, 0, 0, (rng.next() % 40) as u8];
        match switch.route(dst, from, vifs.iter().copied()) {
            Route::Unicast(to) => assert!(to != from && switch.lookup(dst) == Some(to)),
            Route::Drop => assert_eq!(switch.lookup(dst), Some(from)),
            Route::Flood(to) => {
                assert_eq!(to.len(), 3);
                assert!(!to.contains(&from));
            }
        }
        assert!(switch.len() <= 16);
        if round % 97 == 0 {
            switch.forget(vifs[(rng.next() % 4) as usize]);
        }
        if round % 10 == 0 {
            let mut bytes = encoded(&switch);
            assert_eq!(Switch::decode(&bytes).as_ref(), Ok(&switch));
            // Damaged and random encodings never panic.
            rng.damage(&mut bytes, 2);
            let _ = Switch::decode(&bytes);
            let noise: Vec<u8> = (0..rng.next() % 120).map(|_| rng.next() as u8).collect();
            if let Ok(mut decoded) = Switch::decode(&noise) {
                decoded.learn(mac(1), A);
            }
        }
    }
}
