//! Randomized property test: random well-formed and malformed byte streams from several
//! connections, fed in random pieces, with random domain events and restarts.
//!
//! Properties checked after every step: nothing panics; every connection's output, read in
//! random pieces, is a sequence of well-framed messages of known types; a snapshot decodes to an
//! equal store (decoding runs the same tree check as `CONTROL check`); and a twin
//! store that is rebuilt from its snapshot at random moments answers exactly as the original.
//! Deterministic (fixed seeds); fewer rounds under Miri.

mod common;

use std::collections::BTreeMap;

use common::{fixture, Rng};
use xenolith_xenstore::wire::{self, msg::*};
use xenolith_xenstore::{NewDomain, Ring, Store, Transport};

const MARK: Transport = Transport { req_cons: 1, rsp_prod: 1 };

const PATHS: &[&str] = &[
    "a",
    "a/b",
    "a/b/c",
    "x",
    "name",
    "domid",
    "q/w/e",
    "/",
    "/local",
    "/local/domain",
    "/local/domain/1",
    "/local/domain/1/a",
    "/local/domain/2/a/b",
    "/tool",
    "/big/n1",
    "/big/n2",
    "",
    "a//b",
    "/a/",
    "@releaseDomain",
    "@introduceDomain",
    "@other",
    "a b",
    "/local/domain/3/x",
];
const PERMS: &[&str] = &["n1", "r2", "b0", "w3", "n0", "r1", "x9", "r", "b65535", "n4", "r0x2"];
const TYPES: &[u32] = &[
    XS_READ,
    XS_WRITE,
    XS_WRITE,
    XS_MKDIR,
    XS_RM,
    XS_DIRECTORY,
    XS_DIRECTORY_PART,
    XS_GET_PERMS,
    XS_SET_PERMS,
    XS_WATCH,
    XS_WATCH,
    XS_UNWATCH,
    XS_TRANSACTION_START,
    XS_TRANSACTION_END,
    XS_TRANSACTION_END,
    XS_RESET_WATCHES,
    XS_GET_DOMAIN_PATH,
    XS_IS_DOMAIN_INTRODUCED,
    XS_INTRODUCE,
    XS_RELEASE,
    XS_RESUME,
    XS_SET_TARGET,
    XS_CONTROL,
    XS_WATCH_EVENT,
    XS_ERROR,
    20,
    99,
];

fn domid_text(rng: &mut Rng) -> String {
    rng.pick(&["0", "1", "2", "3", "4", "5", "9", "-1", "x", "32752", "70000"]).to_string()
}

fn random_payload(rng: &mut Rng, ty: u32) -> Vec<u8> {
    let path = |rng: &mut Rng| rng.pick(PATHS).as_bytes().to_vec();
    let mut parts: Vec<Vec<u8>> = match ty {
        XS_WRITE => {
            let mut p = path(rng);
            p.push(0);
            let len = if rng.chance(5) { 2100 } else { rng.below(12) };
            p.extend((0..len).map(|_| if rng.chance(10) { 0 } else { b'a' + rng.below(26) as u8 }));
            return p;
        }
        XS_DIRECTORY_PART => vec![path(rng), rng.below(40).to_string().into_bytes()],
        XS_SET_PERMS => {
            let mut v = vec![path(rng)];
            for _ in 0..rng.below(7) {
                v.push(rng.pick(PERMS).as_bytes().to_vec());
            }
            v
        }
        XS_WATCH | XS_UNWATCH => vec![path(rng), format!("t{}", rng.below(3)).into_bytes()],
        XS_TRANSACTION_START | XS_RESET_WATCHES => vec![Vec::new()],
        XS_TRANSACTION_END => vec![rng.pick(&["T", "F", "X"]).as_bytes().to_vec()],
        XS_GET_DOMAIN_PATH | XS_IS_DOMAIN_INTRODUCED | XS_RELEASE | XS_RESUME => {
            vec![domid_text(rng).into_bytes()]
        }
        XS_INTRODUCE => vec![
            domid_text(rng).into_bytes(),
            rng.pick(&["4096", "x", "1"]).as_bytes().to_vec(),
            rng.pick(&["3", "0", "9"]).as_bytes().to_vec(),
        ],
        XS_SET_TARGET => vec![domid_text(rng).into_bytes(), domid_text(rng).into_bytes()],
        XS_CONTROL => match rng.below(6) {
            0 => vec![b"check".to_vec()],
            1 => vec![b"help".to_vec()],
            2 => vec![b"quota".to_vec()],
            3 => vec![b"quota".to_vec(), domid_text(rng).into_bytes()],
            4 => vec![
                b"quota".to_vec(),
                b"set".to_vec(),
                rng.pick(&["nodes", "watches", "outstanding", "watch-events", "transaction-nodes"])
                    .as_bytes()
                    .to_vec(),
                rng.pick(&["1", "3", "50", "0"]).as_bytes().to_vec(),
            ],
            _ => vec![b"log".to_vec(), b"on".to_vec()],
        },
        _ => vec![path(rng)],
    };
    if rng.chance(10) {
        parts.push(b"extra".to_vec());
    }
    let mut payload = wire::join(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
    if rng.chance(8) {
        payload.pop();
    }
    if rng.chance(3) {
        payload.extend_from_slice(b"junk");
    }
    payload
}

/// A random byte stream for one connection: usually whole requests, sometimes noise, rarely an
/// oversized header.
fn random_stream(rng: &mut Rng) -> Vec<u8> {
    let mut stream = Vec::new();
    for _ in 0..1 + rng.below(4) {
        match rng.below(100) {
            0..=1 => {
                let mut bad = wire::encode_message(XS_READ, 1, 0, b"");
                bad[12..16].copy_from_slice(&(4097 + rng.below(100_000) as u32).to_le_bytes());
                stream.extend_from_slice(&bad);
            }
            2..=4 => stream.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
            _ => {
                let ty = *rng.pick(TYPES);
                let tx = match rng.below(10) {
                    0..=5 => 0,
                    6..=8 => 1 + rng.below(3) as u32,
                    _ => rng.next() as u32,
                };
                let payload = random_payload(rng, ty);
                stream.extend_from_slice(&wire::encode_message(
                    ty,
                    rng.next() as u32,
                    tx,
                    &payload,
                ));
            }
        }
    }
    stream
}

/// Per-connection bytes read so far that do not yet form a whole message.
#[derive(Default)]
struct Reader {
    carry: BTreeMap<u16, Vec<u8>>,
}

impl Reader {
    /// Reads `domid`'s output in random pieces (all of it, or stopping early) and checks the
    /// framing of every whole message.
    fn read(&mut self, store: &mut Store, domid: u16, rng: &mut Rng, all: bool) -> Vec<u8> {
        let mut taken = Vec::new();
        loop {
            let pending = store.output(domid);
            if pending.is_empty() || (!all && rng.chance(20)) {
                break;
            }
            let n = 1 + rng.below(pending.len().min(300));
            taken.extend_from_slice(&pending[..n]);
            store.consume_output(domid, n);
        }
        let carry = self.carry.entry(domid).or_default();
        carry.extend_from_slice(&taken);
        let mut rest: &[u8] = carry;
        loop {
            match wire::split_message(rest) {
                Ok(Some((message, tail))) => {
                    let ty = message.header.type_;
                    assert!(ty < XS_TYPE_COUNT && ty != 20, "reply of type {ty}");
                    if ty == XS_WATCH_EVENT {
                        assert_eq!(wire::strings(message.payload).count(), 2, "event payload");
                        assert_eq!(message.header.req_id, 0);
                    }
                    if ty == XS_ERROR {
                        assert!(message.payload.ends_with(b"\0") && message.payload.len() <= 16);
                    }
                    rest = tail;
                }
                Ok(None) => break,
                Err(len) => panic!("domain {domid}: header announcing {len} bytes"),
            }
        }
        let consumed = carry.len() - rest.len();
        carry.drain(..consumed);
        taken
    }

    /// Forgets partial messages of connections that were reset or dropped.
    fn forget_reset(&mut self, store: &mut Store) {
        let live: Vec<u16> = store.connections().collect();
        self.carry.retain(|domid, _| live.contains(domid));
        for domid in live {
            if store.transport(domid) != Some(MARK) {
                self.carry.remove(&domid);
                store.set_transport(domid, MARK);
            }
        }
    }
}

fn encode(store: &Store) -> Vec<u8> {
    let mut bytes = Vec::new();
    store.encode(&mut bytes);
    bytes
}

/// One round: a fresh fixture and its twin, `steps` random steps applied to both.
fn round(seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut store = fixture();
    let mut twin = Store::decode(&encode(&store)).unwrap();
    let mut reader = Reader::default();
    let mut twin_reader = Reader::default();
    for s in [&mut store, &mut twin] {
        for domid in 0..4 {
            s.set_transport(domid, MARK);
        }
    }
    for step in 0..steps {
        let context = format!("seed {seed:#x}, step {step}");
        let domid = rng.below(6) as u16;
        match rng.below(100) {
            0..=79 => {
                let stream = random_stream(&mut rng);
                let mut offset = 0;
                // Feed in random pieces, reading output in between (back-pressure).
                for _ in 0..64 {
                    if offset >= stream.len() {
                        break;
                    }
                    let end = (offset + 1 + rng.below(stream.len() - offset)).min(stream.len());
                    let piece = &stream[offset..end];
                    let a = store.receive(domid, piece);
                    let b = twin.receive(domid, piece);
                    assert_eq!(a, b, "{context}: receive");
                    match a {
                        Ok(n) => offset += n,
                        Err(_) => break,
                    }
                    let chunk_seed = rng.next();
                    for d in 0..6 {
                        let mut r1 = Rng(chunk_seed | 1);
                        let mut r2 = Rng(chunk_seed | 1);
                        let x = reader.read(&mut store, d, &mut r1, false);
                        let y = twin_reader.read(&mut twin, d, &mut r2, false);
                        assert_eq!(x, y, "{context}: output of {d}");
                    }
                    reader.forget_reset(&mut store);
                    twin_reader.forget_reset(&mut twin);
                }
            }
            80..=84 => {
                store.domain_gone(domid);
                twin.domain_gone(domid);
            }
            85..=87 => {
                store.domain_shutdown(domid);
                twin.domain_shutdown(domid);
            }
            88..=90 => {
                let ring = Some(Ring { gfn: 1, port: 1 });
                let again =
                    NewDomain { privileged: domid == 0, ring, ..NewDomain::new("again", 2, 4096) };
                assert_eq!(store.add_domain(domid, &again), twin.add_domain(domid, &again));
                store.set_transport(domid, MARK);
                twin.set_transport(domid, MARK);
            }
            91..=93 => {
                store.abort_transactions();
                twin.abort_transactions();
            }
            _ => {
                // The twin restarts from its snapshot.
                twin = Store::decode(&encode(&twin)).unwrap_or_else(|e| panic!("{context}: {e}"));
                twin.abort_transactions();
                store.abort_transactions();
            }
        }
        reader.forget_reset(&mut store);
        twin_reader.forget_reset(&mut twin);
        assert_eq!(store.take_effects(), twin.take_effects(), "{context}: effects");
        let bytes = encode(&store);
        let decoded = Store::decode(&bytes).unwrap_or_else(|e| panic!("{context}: snapshot: {e}"));
        assert_eq!(decoded, store, "{context}: snapshot round trip");
        assert_eq!(twin, store, "{context}: twin diverged");
    }
    // Drain everything: all output must be whole messages.
    for d in 0..6 {
        reader.read(&mut store, d, &mut rng, true);
        assert!(
            reader.carry.get(&d).is_none_or(Vec::is_empty),
            "seed {seed:#x}: partial message left"
        );
    }
}

#[test]
fn random_streams() {
    let (rounds, steps) = if cfg!(miri) { (2, 5) } else { (120, 60) };
    for i in 0..rounds {
        round(0x9e37_79b9_7f4a_7c15 ^ (i as u64).wrapping_mul(0x1000_0000_01b3), steps);
    }
}
