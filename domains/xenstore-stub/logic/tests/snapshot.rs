//! Snapshot round trips: a decoded store equals the original and answers every later request
//! byte for byte as the original does; damaged snapshots are refused without a panic.

mod common;

use common::{call, drain, fixture, Rng};
use xenolith_xenstore::wire::{self, msg::*};
use xenolith_xenstore::{DecodeError, Ring, Store, Transport, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};

/// A store with something of everything: nodes, permissions, relative, absolute and special
/// watches, open transactions with writes and queued events, a half-received request, half-sent
/// output, a target, an ignored connection, changed quotas, pending effects.
fn busy() -> Store {
    static BUSY: std::sync::OnceLock<Store> = std::sync::OnceLock::new();
    BUSY.get_or_init(build_busy).clone()
}

fn build_busy() -> Store {
    let mut s = fixture();
    call(&mut s, 0, XS_CONTROL, 0, b"quota\0set\0nodes\x00500\0");
    call(&mut s, 0, XS_CONTROL, 0, b"log\0on\0");
    call(&mut s, 0, XS_SET_PERMS, 0, b"@releaseDomain\0n0\0r2\0");
    call(&mut s, 0, XS_SET_TARGET, 0, b"3\x001\0");
    for i in 0..if cfg!(miri) { 6 } else { 40 } {
        call(&mut s, 1, XS_WRITE, 0, format!("dir{}/k{i}\0value {i}", i % 4).as_bytes());
    }
    call(&mut s, 1, XS_SET_PERMS, 0, b"dir0\0n1\0r2\0w3\0");
    call(&mut s, 1, XS_WATCH, 0, b"dir1\0rel\0");
    call(&mut s, 2, XS_WATCH, 0, b"/local/domain/1/dir0\0abs\0");
    call(&mut s, 0, XS_WATCH, 0, b"@releaseDomain\0special\0");
    call(&mut s, 2, XS_WATCH, 0, b"@releaseDomain\0special2\0");
    // Transaction 1 of domain 1: a write and an rm with queued events.
    call(&mut s, 1, XS_TRANSACTION_START, 0, b"\0");
    call(&mut s, 1, XS_WRITE, 1, b"dir1/new\0in tx");
    call(&mut s, 1, XS_RM, 1, b"dir2\0");
    call(&mut s, 1, XS_TRANSACTION_START, 0, b"\0");
    call(&mut s, 1, XS_READ, 2, b"dir3/k3\0");
    // Domain 2: output left unread, the first message half taken.
    for _ in 0..3 {
        let bytes = wire::encode_message(XS_READ, 9, 0, b"/local/domain/1/dir0/k0\0");
        s.receive(2, &bytes).unwrap();
    }
    let half = s.output(2).len() / 2;
    s.consume_output(2, half);
    // Domain 3: half a request received.
    let bytes = wire::encode_message(XS_WRITE, 4, 0, b"/local/domain/1/dm\0xyz");
    s.receive(3, &bytes[..20]).unwrap();
    s.set_transport(3, Transport { req_cons: 20, rsp_prod: 1234 });
    // Domain 5: introduced, then broke the protocol.
    call(&mut s, 0, XS_INTRODUCE, 0, b"5\x00777\x005\0");
    let mut bad = wire::encode_message(XS_READ, 1, 0, b"");
    bad[12..16].copy_from_slice(&5000u32.to_le_bytes());
    assert!(s.receive(5, &bad).is_err());
    s.domain_shutdown(3);
    s
}

fn encode(store: &Store) -> Vec<u8> {
    let mut bytes = Vec::new();
    store.encode(&mut bytes);
    bytes
}

/// Everything queued for `domid`, as raw bytes (domain 2's stream starts mid-message).
fn drain_raw(store: &mut Store, domid: u16) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let chunk = store.output(domid).to_vec();
        if chunk.is_empty() {
            return out;
        }
        store.consume_output(domid, chunk.len());
        out.extend_from_slice(&chunk);
    }
}

/// The same request script against both stores, comparing every output byte and effect.
fn same_behaviour(a: &mut Store, b: &mut Store) {
    let script: &[(u16, u32, u32, &[u8])] = &[
        (3, XS_WRITE, 0, b""),
        (1, XS_WRITE, 0, b"dir1/x\0v"),
        (1, XS_TRANSACTION_END, 1, b"T\0"),
        (1, XS_TRANSACTION_END, 2, b"T\0"),
        (2, XS_READ, 0, b"/local/domain/1/dir0/k0\0"),
        (1, XS_RM, 0, b"dir0\0"),
        (1, XS_DIRECTORY_PART, 0, b"dir3\x000\0"),
        (0, XS_RELEASE, 0, b"3\0"),
        (0, XS_CONTROL, 0, b"quota\x001\0"),
        (2, XS_TRANSACTION_START, 0, b"\0"),
        (5, XS_READ, 0, b"name\0"),
        (0, XS_INTRODUCE, 0, b"5\x00778\x005\0"),
        (5, XS_READ, 0, b"/local/domain/1\0"),
    ];
    for (step, &(dom, ty, tx, payload)) in script.iter().enumerate() {
        // Domain 3's first "request" completes the half-received one.
        let bytes = if dom == 3 && step == 0 {
            wire::encode_message(XS_WRITE, 4, 0, b"/local/domain/1/dm\0xyz")[20..].to_vec()
        } else {
            wire::encode_message(ty, step as u32, tx, payload)
        };
        assert_eq!(a.receive(dom, &bytes), b.receive(dom, &bytes), "step {step}");
        for domid in 0..6 {
            let (out_a, out_b) = (drain_raw(a, domid), drain_raw(b, domid));
            assert_eq!(out_a, out_b, "step {step}, domain {domid}");
        }
        assert_eq!(a.take_effects(), b.take_effects(), "step {step}");
        assert_eq!(a, b, "step {step}");
    }
    assert_eq!(encode(a), encode(b));
}

#[test]
fn round_trip_is_identity() {
    for store in [Store::new(Default::default()), fixture(), busy()] {
        let bytes = encode(&store);
        let decoded = Store::decode(&bytes).expect("decode");
        assert_eq!(decoded, store);
        assert_eq!(encode(&decoded), bytes);
    }
}

#[test]
fn decoded_store_behaves_identically() {
    let mut original = busy();
    let mut decoded = Store::decode(&encode(&original)).unwrap();
    same_behaviour(&mut original, &mut decoded);
}

#[test]
fn trailing_region_bytes_are_ignored_and_header_is_as_documented() {
    let store = busy();
    let mut bytes = encode(&store);
    assert_eq!(bytes[..8], SNAPSHOT_MAGIC);
    assert_eq!(bytes[8..12], SNAPSHOT_VERSION.to_le_bytes());
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize, bytes.len() - 24);
    bytes.extend_from_slice(&[0xAA; 100]);
    assert_eq!(Store::decode(&bytes).unwrap(), store);
}

#[test]
fn abort_transactions_after_decode() {
    let mut store = Store::decode(&encode(&busy())).unwrap();
    store.abort_transactions();
    drain(&mut store, 1);
    assert_eq!(call(&mut store, 1, XS_READ, 1, b"dir1/new\0"), (XS_ERROR, b"EAGAIN\0".to_vec()));
    assert_eq!(
        call(&mut store, 1, XS_TRANSACTION_END, 1, b"T\0"),
        (XS_ERROR, b"EAGAIN\0".to_vec())
    );
    assert_eq!(
        call(&mut store, 1, XS_TRANSACTION_END, 1, b"T\0"),
        (XS_ERROR, b"ENOENT\0".to_vec())
    );
    assert_eq!(call(&mut store, 1, XS_READ, 0, b"dir1/new\0"), (XS_ERROR, b"ENOENT\0".to_vec()));
    assert_eq!(store.ring(5), Some(Ring { gfn: 777, port: 5 }));
}

#[test]
fn truncated_snapshots_are_refused() {
    let bytes = encode(&busy());
    // Under Miri about 48 prefixes, whatever the snapshot's size (each decode costs its size).
    let step = if cfg!(miri) { (bytes.len() / 48).max(1) } else { 1 };
    for len in (0..bytes.len()).step_by(step) {
        assert!(Store::decode(&bytes[..len]).is_err(), "prefix of {len} bytes accepted");
        // Without the checksum the body parser itself must notice.
        let _ = Store::decode_unchecked(&bytes[..len]);
    }
    assert_eq!(Store::decode(&bytes[..10]), Err(DecodeError::Truncated));
}

#[test]
fn every_changed_byte_is_detected() {
    let bytes = encode(&busy());
    // Under Miri about 32 positions, whatever the snapshot's size.
    let step = if cfg!(miri) { (bytes.len() / 32).max(1) } else { 1 };
    for index in (0..bytes.len()).step_by(step) {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[index] ^= flip;
            assert!(Store::decode(&damaged).is_err(), "change at byte {index} accepted");
        }
    }
    let mut other = bytes.clone();
    other[..8].copy_from_slice(b"NOTASNAP");
    assert_eq!(Store::decode(&other), Err(DecodeError::Magic));
    let mut newer = bytes;
    newer[8..12].copy_from_slice(&(SNAPSHOT_VERSION + 1).to_le_bytes());
    assert_eq!(Store::decode(&newer), Err(DecodeError::Version(SNAPSHOT_VERSION + 1)));
}

#[test]
fn unchecked_garbage_never_panics() {
    let bytes = encode(&busy());
    let mut rng = Rng(0x5eed_f00d_5a4e);
    let rounds = if cfg!(miri) { 3 } else { 4_000 };
    for _ in 0..rounds {
        let mut damaged = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let index = 24 + rng.below(damaged.len() - 24);
            damaged[index] = rng.next() as u8;
        }
        if rng.chance(20) {
            damaged.truncate(24 + rng.below(damaged.len() - 24));
        }
        if let Ok(store) = Store::decode_unchecked(&damaged) {
            // Whatever was accepted must encode and decode again.
            let again = encode(&store);
            assert_eq!(Store::decode(&again).as_ref(), Ok(&store));
        }
    }
    for len in [0, 1, 23, 24, 25, 100] {
        let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(Store::decode(&noise).is_err());
    }
}

#[test]
fn large_store_round_trip() {
    let mut store = fixture();
    let count = if cfg!(miri) { 12 } else { 1000 };
    for i in 0..count {
        call(
            &mut store,
            0,
            XS_WRITE,
            0,
            format!("/data/group{}/node{i}\0some value {i}", i % 10).as_bytes(),
        );
    }
    let bytes = encode(&store);
    assert_eq!(Store::decode(&bytes).unwrap(), store);
}
