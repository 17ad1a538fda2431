//! Fuzz target `wire_and_store`: arbitrary bytes from several connections into one store, plus
//! arbitrary bytes into the snapshot decoder.
//!
//! The input is a sequence of chunks `[control, length, bytes...]`: `control & 7` picks the
//! domain (0 is the privileged control domain, 1-3 guests, 4-7 unknown until introduced), the
//! rest picks the operation: feed the bytes to `receive` (most often), take output in pieces,
//! a domain event (death, shutdown, re-creation, restart of transactions), or a snapshot round
//! trip that replaces the store. After every chunk every connection's output must be whole,
//! well-framed messages, and at the end the snapshot must round-trip. The whole input is also
//! given to `Store::decode` and `Store::decode_unchecked`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xenolith_xenstore::wire::{self, msg};
use xenolith_xenstore::{NewDomain, Quotas, Ring, Store};

fn fixture() -> Store {
    let mut store = Store::new(Quotas::default());
    let control = NewDomain { privileged: true, ..NewDomain::new("control", 1, 65536) };
    store.add_domain(0, &control).unwrap();
    for domid in 1..=3 {
        let ring = Some(Ring { gfn: 1, port: 1 });
        store.add_domain(domid, &NewDomain { ring, ..NewDomain::new("guest", 2, 16384) }).unwrap();
    }
    store
}

fn snapshot(store: &Store) -> Vec<u8> {
    let mut bytes = Vec::new();
    store.encode(&mut bytes);
    bytes
}

/// Takes `domid`'s output `piece` bytes at a time into `stream`.
fn take(store: &mut Store, domid: u16, piece: usize, stream: &mut Vec<u8>) {
    loop {
        let pending = store.output(domid);
        if pending.is_empty() {
            return;
        }
        let n = piece.clamp(1, pending.len());
        stream.extend_from_slice(&pending[..n]);
        store.consume_output(domid, n);
    }
}

/// Checks that `stream` is whole, well-framed messages of types a server sends.
fn check_framing(mut stream: &[u8]) {
    while !stream.is_empty() {
        match wire::split_message(stream) {
            Ok(Some((message, rest))) => {
                let ty = message.header.type_;
                assert!(ty < msg::XS_TYPE_COUNT && ty != 20, "unexpected type {ty}");
                stream = rest;
            }
            other => panic!("output not well framed: {other:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    assert!(Store::decode(data).is_err() || data.len() >= 24);
    if let Ok(decoded) = Store::decode_unchecked(data) {
        let again = snapshot(&decoded);
        assert_eq!(Store::decode(&again).as_ref(), Ok(&decoded));
    }

    let mut store = fixture();
    let mut rest = data;
    while let [control, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, tail) = tail.split_at(n);
        rest = tail;
        let domid = u16::from(control & 7);
        match control >> 3 {
            0..=19 => {
                let mut offset = 0;
                // Feed everything, taking output whenever back-pressure stops the input.
                for _ in 0..8 {
                    match store.receive(domid, &chunk[offset..]) {
                        Ok(used) => offset += used,
                        Err(_) => break,
                    }
                    if offset == chunk.len() {
                        break;
                    }
                    let mut stream = Vec::new();
                    take(&mut store, domid, usize::MAX, &mut stream);
                    check_framing(&stream);
                }
            }
            20..=23 => {
                // Take part of the output only (a half-sent message stays queued).
                let n = chunk.first().map_or(1, |&b| usize::from(b));
                let pending = store.output(domid).len();
                store.consume_output(domid, n.min(pending));
            }
            24 => store.domain_gone(domid),
            25 => store.domain_shutdown(domid),
            26 => {
                let again =
                    NewDomain { privileged: domid == 0, ..NewDomain::new("again", 1, 4096) };
                let _ = store.add_domain(domid, &again);
            }
            27 => store.abort_transactions(),
            28 => {
                let _ = store.take_effects();
            }
            _ => {
                let bytes = snapshot(&store);
                let decoded = Store::decode(&bytes).expect("a snapshot of a live store decodes");
                assert_eq!(decoded, store);
                store = decoded;
            }
        }
    }
    let bytes = snapshot(&store);
    assert_eq!(Store::decode(&bytes).as_ref(), Ok(&store));
    let domids: Vec<u16> = store.connections().collect();
    for domid in domids {
        // A half-taken first message is finished first; the rest must be whole messages.
        let partial = store.output(domid).len();
        store.consume_output(domid, partial);
        let mut stream = Vec::new();
        take(&mut store, domid, 7, &mut stream);
        check_framing(&stream);
    }
});
