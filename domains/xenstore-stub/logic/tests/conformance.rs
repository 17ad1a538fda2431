//! Conformance: request → reply tables against Xen 4.17's semantics (`docs/misc/xenstore.txt`,
//! `tools/xenstore/xenstored_*.c`).
//!
//! Every case starts from the fixture (control domain 0, guests 1-3, each with the nodes
//! `Store::add_domain` writes: a home `/local/domain/<id>` (`n<id>`) holding `name`, `domid`,
//! `cpu`, `memory`, ... (`n<id> r0`), and a `/vm/<uuid>`) and runs its steps: a request
//! (domid, type, tx_id, payload) with the expected reply, a check of the watch events each
//! domain received since the last check, or a custom check. Every reply must echo the
//! request's `req_id` and `tx_id`. Prints nothing on success; on failure, names each failing
//! case and step.

mod common;
#[path = "conformance/domains.rs"]
mod domains;
#[path = "conformance/nodes.rs"]
mod nodes;
#[path = "conformance/watches.rs"]
mod watches;

use std::collections::BTreeMap;

use common::{drain, fixture, request, GUEST_NODES, HOME_CHILDREN};
use xenolith_xenstore::wire::{self, msg::*};
use xenolith_xenstore::{AddDomainError, Effect, NewDomain, ProtocolError, Ring, Store, Transport};

enum Exp {
    /// Success (reply type = request type) with this payload.
    Reply(Vec<u8>),
    /// `XS_ERROR` with this name.
    Err(&'static str),
    /// Success, payload accepted by the predicate.
    Check(fn(&[u8]) -> bool),
}

type Custom = Box<dyn Fn(&mut Store, &mut Harness) -> Result<(), String>>;

enum Step {
    Req {
        dom: u16,
        ty: u32,
        tx: u32,
        payload: Vec<u8>,
        exp: Exp,
    },
    /// Exactly these events ("path|token") arrived for `dom` since the last check.
    Events {
        dom: u16,
        events: Vec<String>,
    },
    Custom(Custom),
}

struct Case {
    name: &'static str,
    steps: Vec<Step>,
}

#[derive(Default)]
struct Harness {
    events: BTreeMap<u16, Vec<String>>,
    req_id: u32,
}

fn r(dom: u16, ty: u32, tx: u32, payload: impl AsRef<[u8]>, exp: Exp) -> Step {
    Step::Req { dom, ty, tx, payload: payload.as_ref().to_vec(), exp }
}
fn ok() -> Exp {
    Exp::Reply(b"OK\0".to_vec())
}
fn reply(payload: impl AsRef<[u8]>) -> Exp {
    Exp::Reply(payload.as_ref().to_vec())
}
fn err(name: &'static str) -> Exp {
    Exp::Err(name)
}
fn ev(dom: u16, events: &[&str]) -> Step {
    Step::Events { dom, events: events.iter().map(|e| e.to_string()).collect() }
}
fn no_ev(dom: u16) -> Step {
    ev(dom, &[])
}
fn custom(f: impl Fn(&mut Store, &mut Harness) -> Result<(), String> + 'static) -> Step {
    Step::Custom(Box::new(f))
}
fn call(f: impl Fn(&mut Store) + 'static) -> Step {
    custom(move |s, _| {
        f(s);
        Ok(())
    })
}
fn effects(expected: Vec<Effect>) -> Step {
    custom(move |s, _| {
        let got = s.take_effects();
        if got == expected {
            Ok(())
        } else {
            Err(format!("effects {got:?}, expected {expected:?}"))
        }
    })
}
fn case(name: &'static str, steps: Vec<Step>) -> Case {
    Case { name, steps }
}
/// `n` repeated `x`s.
fn xs(n: usize) -> String {
    "x".repeat(n)
}
fn _unused_cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "|")
}

impl Harness {
    /// Takes all output of every connection; events go to the per-domain logs, replies are
    /// returned.
    fn collect(&mut self, store: &mut Store) -> Vec<(u16, common::Msg)> {
        let mut replies = Vec::new();
        let domids: Vec<u16> = store.connections().collect();
        for domid in domids {
            for message in drain(store, domid) {
                if message.is_event() {
                    let parts: Vec<&[u8]> = wire::strings(&message.payload).collect();
                    let text = format!("{}|{}", show(parts[0]), show(parts[1]));
                    self.events.entry(domid).or_default().push(text);
                } else {
                    replies.push((domid, message));
                }
            }
        }
        replies
    }

    fn step(&mut self, store: &mut Store, step: &Step) -> Result<(), String> {
        match step {
            Step::Req { dom, ty, tx, payload, exp } => {
                self.req_id += 1;
                let bytes = wire::encode_message(*ty, self.req_id, *tx, payload);
                match store.receive(*dom, &bytes) {
                    Ok(n) if n == bytes.len() => {}
                    other => return Err(format!("receive returned {other:?}")),
                }
                let replies = self.collect(store);
                let [(from, reply)] = &replies[..] else {
                    return Err(format!("expected one reply, got {replies:?}"));
                };
                if from != dom || reply.header.req_id != self.req_id || reply.header.tx_id != *tx {
                    return Err(format!("reply not echoing the request: {reply:?}"));
                }
                let (got_type, got) = (reply.header.type_, &reply.payload);
                let good = match exp {
                    Exp::Reply(want) => got_type == *ty && got == want,
                    Exp::Err(name) => {
                        got_type == XS_ERROR && *got == format!("{name}\0").into_bytes()
                    }
                    Exp::Check(check) => got_type == *ty && check(got),
                };
                if !good {
                    let want = match exp {
                        Exp::Reply(want) => format!("type {ty} {:?}", show(want)),
                        Exp::Err(name) => format!("error {name}"),
                        Exp::Check(_) => "a payload passing the check".into(),
                    };
                    return Err(format!("got type {got_type} {:?}, expected {want}", show(got)));
                }
                Ok(())
            }
            Step::Events { dom, events } => {
                self.collect(store);
                let got = self.events.remove(dom).unwrap_or_default();
                if got == *events {
                    Ok(())
                } else {
                    Err(format!("events {got:?}, expected {events:?}"))
                }
            }
            Step::Custom(f) => f(store, self),
        }
    }
}

fn generation_then(rest: &'static [u8]) -> impl Fn(&[u8]) -> bool {
    move |payload| is_generation_then(payload, rest)
}

/// A `DIRECTORY_PART` reply: a generation count, then `rest`.
fn is_generation_then(payload: &[u8], rest: &[u8]) -> bool {
    let nul = payload.iter().position(|&b| b == 0).unwrap_or(payload.len());
    !payload[..nul].is_empty()
        && payload[..nul].iter().all(u8::is_ascii_digit)
        && payload.get(nul + 1..) == Some(rest)
}

fn dir_part_gen(store: &mut Store, dom: u16, path: &str) -> Vec<u8> {
    let (_, payload) =
        common::call(store, dom, XS_DIRECTORY_PART, 0, format!("{path}\x000\0").as_bytes());
    payload.split(|&b| b == 0).next().unwrap().to_vec()
}

/// The cases of [`conformance_part`] 0: the two parts run in parallel (under Miri too, where
/// `cargo xtask test` starts each in its own process).
#[test]
fn conformance_first_part() {
    conformance_part(0);
}

/// The cases of [`conformance_part`] 1.
#[test]
fn conformance_second_part() {
    conformance_part(1);
}

/// Runs every other case of the whole list (`part` 0 or 1), each from a copy of the fixture.
fn conformance_part(part: usize) {
    let cases: Vec<Case> = [
        nodes::read_cases(),
        nodes::write_cases(),
        nodes::mkdir_rm_cases(),
        nodes::directory_cases(),
        nodes::perms_cases(),
        watches::watch_cases(),
        watches::transaction_cases(),
        domains::domain_cases(),
        domains::control_cases(),
        domains::protocol_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    let base = fixture();
    // Under Miri every sixth case: each starts from a copy of the whole fixture, which now holds
    // init-dom0less's node set for four domains, and all of them took Miri past its time budget.
    let stride = if cfg!(miri) { 6 } else { 1 };
    let mine = cases.iter().step_by(stride).skip(part).step_by(2);
    let mut ran = 0;
    for case in mine {
        ran += 1;
        let mut store = base.clone();
        let mut harness = Harness::default();
        for (index, step) in case.steps.iter().enumerate() {
            if let Err(message) = harness.step(&mut store, step) {
                failures.push(format!("case {:?}, step {}: {message}", case.name, index + 1));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
