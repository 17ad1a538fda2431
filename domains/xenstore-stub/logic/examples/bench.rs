//! Host benchmark of the store's hot paths: `cargo run --release -p xenolith-xenstore --example bench`.
//!
//! Each figure runs whole requests through [`Store::receive`] and takes the replies back with
//! [`Store::output`] / [`Store::consume_output`], as the binary does, so framing and queueing are
//! included. Prints one line per figure: `xenstore-bench: <what> <value> <unit>`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use xenolith_xenstore::wire::{self, msg::*};
use xenolith_xenstore::{NewDomain, Quotas, Ring, Store};

/// A store with the control domain (0) and two guests.
fn store() -> Store {
    let mut store = Store::new(Quotas::default());
    let control = NewDomain { privileged: true, ..NewDomain::new("control", 1, 65536) };
    store.add_domain(0, &control).expect("control");
    for domid in 1..=2u16 {
        let ring = Some(Ring { gfn: u64::from(domid), port: u32::from(domid) });
        let name = format!("guest{domid}");
        let guest = NewDomain { ring, ..NewDomain::new(&name, 2, 16384) };
        store.add_domain(domid, &guest).expect("guest");
    }
    store
}

/// Takes everything queued for `domid`; returns the bytes taken.
fn drain(store: &mut Store, domid: u16) -> usize {
    let mut total = 0;
    loop {
        let n = store.output(domid).len();
        if n == 0 {
            return total;
        }
        total += n;
        store.consume_output(domid, n);
    }
}

/// Sends one request from `domid` and drains its output; returns the reply's bytes.
fn send(store: &mut Store, domid: u16, request: &[u8]) -> usize {
    let used = store.receive(domid, request).expect("well-formed request");
    assert_eq!(used, request.len(), "back-pressure in a benchmark");
    drain(store, domid)
}

/// Runs `op` repeatedly for about `budget`, returning operations per second.
fn rate(budget: Duration, mut op: impl FnMut()) -> u64 {
    for _ in 0..1000 {
        op();
    }
    let start = Instant::now();
    let mut count: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            op();
        }
        count += 1000;
    }
    (count as f64 / start.elapsed().as_secs_f64()) as u64
}

fn main() {
    let budget = Duration::from_millis(300);

    let mut s = store();
    let read = wire::encode_message(XS_READ, 1, 0, b"name\0");
    println!(
        "xenstore-bench: read {} ops/s",
        rate(budget, || {
            black_box(send(&mut s, 1, &read));
        })
    );

    let mut s = store();
    let mut counter = 0u32;
    println!(
        "xenstore-bench: write {} ops/s",
        rate(budget, || {
            counter = counter.wrapping_add(1);
            let payload = format!("data/value\0{counter}");
            black_box(send(&mut s, 1, &wire::encode_message(XS_WRITE, 1, 0, payload.as_bytes())));
        })
    );

    let mut s = store();
    for i in 0..16 {
        send(
            &mut s,
            1,
            &wire::encode_message(XS_WRITE, 1, 0, format!("dir/entry{i}\0v").as_bytes()),
        );
    }
    let directory = wire::encode_message(XS_DIRECTORY, 1, 0, b"dir\0");
    println!(
        "xenstore-bench: directory(16 children) {} ops/s",
        rate(budget, || {
            black_box(send(&mut s, 1, &directory));
        })
    );

    let mut s = store();
    send(&mut s, 1, &wire::encode_message(XS_WRITE, 1, 0, b"watched/value\0v"));
    send(&mut s, 1, &wire::encode_message(XS_SET_PERMS, 1, 0, b"watched\0n1\0r2\0"));
    send(&mut s, 1, &wire::encode_message(XS_SET_PERMS, 1, 0, b"watched/value\0n1\0r2\0"));
    send(&mut s, 1, &wire::encode_message(XS_WATCH, 1, 0, b"watched\0own\0"));
    send(&mut s, 2, &wire::encode_message(XS_WATCH, 1, 0, b"/local/domain/1/watched\0peer\0"));
    send(&mut s, 0, &wire::encode_message(XS_WATCH, 1, 0, b"/local/domain\0control\0"));
    drain(&mut s, 2);
    drain(&mut s, 0);
    let mut counter = 0u32;
    println!(
        "xenstore-bench: write firing 3 watches {} ops/s",
        rate(budget, || {
            counter = counter.wrapping_add(1);
            let payload = format!("watched/value\0{counter}");
            send(&mut s, 1, &wire::encode_message(XS_WRITE, 1, 0, payload.as_bytes()));
            black_box(drain(&mut s, 2) + drain(&mut s, 0));
        })
    );

    let mut s = store();
    send(&mut s, 1, &wire::encode_message(XS_WRITE, 1, 0, b"tx/value\0v"));
    let start_tx = wire::encode_message(XS_TRANSACTION_START, 1, 0, b"\0");
    let mut counter = 0u32;
    println!(
        "xenstore-bench: transaction(start+read+write+end) {} ops/s",
        rate(budget, || {
            s.receive(1, &start_tx).expect("start");
            let reply = s.output(1).to_vec();
            drain(&mut s, 1);
            let id: u32 =
                std::str::from_utf8(&reply[16..reply.len() - 1]).unwrap().parse().unwrap();
            send(&mut s, 1, &wire::encode_message(XS_READ, 2, id, b"tx/value\0"));
            counter = counter.wrapping_add(1);
            let payload = format!("tx/value\0{counter}");
            send(&mut s, 1, &wire::encode_message(XS_WRITE, 3, id, payload.as_bytes()));
            send(&mut s, 1, &wire::encode_message(XS_TRANSACTION_END, 4, id, b"T\0"));
        })
    );

    let mut s = store();
    for i in 0..1000 {
        let payload = format!("/vm/group{}/node{i}\0some value {i}", i % 20);
        send(&mut s, 0, &wire::encode_message(XS_WRITE, 1, 0, payload.as_bytes()));
    }
    let nodes = s.stats().nodes;
    let mut bytes = Vec::with_capacity(128 * 1024);
    let encodes = rate(budget, || {
        bytes.clear();
        s.encode(&mut bytes);
        black_box(bytes.len());
    });
    println!(
        "xenstore-bench: snapshot encode ({nodes} nodes, {} bytes) {:.1} us",
        bytes.len(),
        1e6 / encodes as f64
    );
    let decodes = rate(budget, || {
        black_box(Store::decode(&bytes).expect("decode"));
    });
    println!("xenstore-bench: snapshot decode ({nodes} nodes) {:.1} us", 1e6 / decodes as f64);
}
