//! Helpers shared by the integration tests: the fixture store and a client that frames requests
//! and reads replies the way the binary and a guest would.
#![allow(dead_code)]

use xenolith_xenstore::wire::{self, xsd_sockmsg};
use xenolith_xenstore::{NewDomain, Quotas, Ring, Store};

/// The control domain of the fixture (privileged, owns the root).
pub const CONTROL: u16 = 0;

/// vCPUs of each fixture guest.
pub const GUEST_VCPUS: u32 = 2;
/// KiB of memory of each fixture guest.
pub const GUEST_KIB: u64 = 16384;

/// Nodes a fixture guest owns once added: 25, 2 per vCPU and 3 for its ring (the table in
/// the crate's `populate` module).
pub const GUEST_NODES: u32 = 25 + 2 * GUEST_VCPUS + 3;
/// A fixture guest's home as `DIRECTORY` lists it (creation order).
pub const HOME_CHILDREN: &str =
    "vm\0name\0cpu\0memory\0device\0control\0domid\0data\0drivers\0feature\0attr\0error\0store\0";

/// The control domain as the fixture adds it: privileged, one vCPU, 64 MiB, no ring.
pub fn control_domain() -> NewDomain<'static> {
    NewDomain { privileged: true, ..NewDomain::new("control", 1, 65536) }
}

/// Guest `domid` as the fixture adds it: `guest<domid>`, [`GUEST_VCPUS`] vCPUs,
/// [`GUEST_KIB`] KiB, ring gfn `0x1000 + domid`, port `domid`.
pub fn guest(domid: u16, name: &str) -> NewDomain<'_> {
    let ring = Ring { gfn: 0x1000 + u64::from(domid), port: u32::from(domid) };
    NewDomain { ring: Some(ring), ..NewDomain::new(name, GUEST_VCPUS, GUEST_KIB) }
}

/// A store with Xen's default quotas, control domain 0 and guests 1, 2, 3.
pub fn fixture() -> Store {
    fixture_with(Quotas::default())
}

/// [`fixture`] with other quotas.
pub fn fixture_with(quotas: Quotas) -> Store {
    let mut store = Store::new(quotas);
    store.add_domain(CONTROL, &control_domain()).expect("add control");
    for domid in 1..=3u16 {
        store.add_domain(domid, &guest(domid, &format!("guest{domid}"))).expect("add guest");
    }
    store
}

/// One message read back from a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub header: xsd_sockmsg,
    pub payload: Vec<u8>,
}

impl Msg {
    pub fn is_event(&self) -> bool {
        self.header.type_ == xenolith_abi::xen::xs_wire::msg::XS_WATCH_EVENT
    }
}

/// Takes everything queued for `domid`, `chunk` bytes at a time (0: whole chunks), and splits
/// it into messages; panics on bad framing.
pub fn drain_chunked(store: &mut Store, domid: u16, chunk: usize) -> Vec<Msg> {
    let mut stream = Vec::new();
    loop {
        let pending = store.output(domid);
        if pending.is_empty() {
            break;
        }
        let n = if chunk == 0 { pending.len() } else { chunk.min(pending.len()) };
        stream.extend_from_slice(&pending[..n]);
        store.consume_output(domid, n);
    }
    split_all(&stream)
}

/// [`drain_chunked`] taking whole chunks.
pub fn drain(store: &mut Store, domid: u16) -> Vec<Msg> {
    drain_chunked(store, domid, 0)
}

/// Splits a byte stream into whole messages; panics if it is not exactly that.
pub fn split_all(mut stream: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        match wire::split_message(stream) {
            Ok(Some((message, rest))) => {
                out.push(Msg { header: message.header, payload: message.payload.to_vec() });
                stream = rest;
            }
            other => panic!("output is not well framed: {other:?}"),
        }
    }
    out
}

/// Sends one request and returns everything `domid` got back.
pub fn request(store: &mut Store, domid: u16, type_: u32, tx_id: u32, payload: &[u8]) -> Vec<Msg> {
    let bytes = wire::encode_message(type_, 77, tx_id, payload);
    assert_eq!(store.receive(domid, &bytes), Ok(bytes.len()), "request not consumed");
    drain(store, domid)
}

/// Sends one request and returns its reply (type, payload), ignoring events.
pub fn call(
    store: &mut Store,
    domid: u16,
    type_: u32,
    tx_id: u32,
    payload: &[u8],
) -> (u32, Vec<u8>) {
    let replies: Vec<Msg> = request(store, domid, type_, tx_id, payload)
        .into_iter()
        .filter(|m| !m.is_event())
        .collect();
    assert_eq!(replies.len(), 1, "expected one reply, got {replies:?}");
    (replies[0].header.type_, replies[0].payload.clone())
}

/// Deterministic xorshift64* generator.
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

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}
