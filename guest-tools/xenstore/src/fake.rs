//! A fake xenstored behind a byte stream, for the tools' tests: a tree of nodes, transactions
//! that roll back, watches, and faults on demand (error replies, raw replies, short reads,
//! `EAGAIN` commits, a directory too large for one reply).
//!
//! It answers as xenstored through Linux's `xenbus_dev_frontend` would: one reply per request,
//! watch events as `XS_WATCH_EVENT` messages, relative paths under the domain's home.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::rc::Rc;

use xenolith_abi::xen::xs_wire::{msg, xsd_sockmsg, XSD_SOCKMSG_SIZE};

use crate::wire::{self, decode_header, encode_header};

/// One node: its value and its permissions' reply payload (`b0\0` by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub value: Vec<u8>,
    pub permissions: Vec<u8>,
}

/// The fake's state, shared by every handle.
#[derive(Debug, Default)]
pub struct State {
    /// Nodes by absolute path; "/" is implicit.
    pub nodes: BTreeMap<Vec<u8>, Node>,
    /// Where relative paths start.
    pub home: Vec<u8>,
    /// Every request: type, transaction, payload.
    pub requests: Vec<(u32, u32, Vec<u8>)>,
    /// `write` calls that ended inside a message.
    pub split_writes: usize,
    /// Requests of (type, path as sent) answered with `XS_ERROR` and this name.
    pub errors: Vec<(u32, Vec<u8>, &'static str)>,
    /// Replies sent instead of the next ones, as raw bytes.
    pub raw_replies: VecDeque<Vec<u8>>,
    /// Commits to answer with `EAGAIN` (rolling back).
    pub eagain_commits: u32,
    /// Most bytes one `read` returns (0: no limit).
    pub chunk: usize,
    /// `XS_DIRECTORY` says `E2BIG`; `XS_DIRECTORY_PART` hands out this many bytes a reply.
    pub directory_part_size: Option<usize>,
    /// Send each watch's first event before its reply.
    pub event_before_watch_reply: bool,
    /// Watch event payloads handed out, one each time the tool waits with nothing to read.
    pub idle_events: VecDeque<Vec<u8>>,
    inbox: Vec<u8>,
    outbox: VecDeque<u8>,
    snapshot: Option<BTreeMap<Vec<u8>, Node>>,
    next_transaction: u32,
}

/// A handle on the fake; clones share it.
#[derive(Clone, Debug)]
pub struct Fake(pub Rc<RefCell<State>>);

impl Fake {
    /// A store holding `/local/domain/1/name = "guest"`, home `/local/domain/1`.
    pub fn new() -> Fake {
        let fake = Fake(Rc::new(RefCell::new(State {
            home: b"/local/domain/1".to_vec(),
            next_transaction: 1,
            ..State::default()
        })));
        fake.set("/local/domain/1/name", b"guest");
        fake
    }

    /// Sets node `path` (absolute) to `value`, creating its parents.
    pub fn set(&self, path: &str, value: &[u8]) {
        self.0.borrow_mut().write(path.as_bytes(), value);
    }

    /// Node `path`'s value.
    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        self.0.borrow().nodes.get(path.as_bytes()).map(|node| node.value.clone())
    }

    /// The types of the requests so far.
    pub fn types(&self) -> Vec<u32> {
        self.0.borrow().requests.iter().map(|(type_, ..)| *type_).collect()
    }
}

impl State {
    fn absolute(&self, path: &[u8]) -> Vec<u8> {
        if path.starts_with(b"/") {
            path.to_vec()
        } else {
            [self.home.as_slice(), b"/", path].concat()
        }
    }

    fn exists(&self, path: &[u8]) -> bool {
        path == b"/" || self.nodes.contains_key(path)
    }

    fn write(&mut self, path: &[u8], value: &[u8]) {
        let path = self.absolute(path);
        for (index, &byte) in path.iter().enumerate().skip(1) {
            if byte == b'/' {
                self.nodes
                    .entry(path[..index].to_vec())
                    .or_insert_with(|| Node { value: Vec::new(), permissions: b"b0\0".to_vec() });
            }
        }
        let node = self
            .nodes
            .entry(path)
            .or_insert_with(|| Node { value: Vec::new(), permissions: b"b0\0".to_vec() });
        node.value = value.to_vec();
    }

    fn children(&self, path: &[u8]) -> Vec<Vec<u8>> {
        let prefix = if path == b"/" { b"/".to_vec() } else { [path, b"/"].concat() };
        self.nodes
            .keys()
            .filter_map(|key| key.strip_prefix(prefix.as_slice()))
            .filter(|rest| !rest.is_empty() && !rest.contains(&b'/'))
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// The reply to one request: (type, payload).
    fn answer(&mut self, header: &xsd_sockmsg, payload: &[u8]) -> (u32, Vec<u8>) {
        let strings = wire::strings(payload);
        let first = strings.first().copied().unwrap_or_default().to_vec();
        if let Some((.., name)) =
            self.errors.iter().find(|(type_, path, _)| *type_ == header.type_ && *path == first)
        {
            return error(name);
        }
        let path = self.absolute(&first);
        match header.type_ {
            msg::XS_READ => match self.nodes.get(&path) {
                Some(node) => (msg::XS_READ, node.value.clone()),
                None if path == b"/" => (msg::XS_READ, Vec::new()),
                None => error("ENOENT"),
            },
            msg::XS_WRITE => {
                let value = &payload[first.len() + 1..];
                self.write(&first, value);
                (msg::XS_WRITE, b"OK\0".to_vec())
            }
            msg::XS_RM => {
                if !self.exists(&path) {
                    return error("ENOENT");
                }
                let below = [path.as_slice(), b"/"].concat();
                self.nodes.retain(|key, _| *key != path && !key.starts_with(&below));
                (msg::XS_RM, b"OK\0".to_vec())
            }
            msg::XS_DIRECTORY if !self.exists(&path) => error("ENOENT"),
            msg::XS_DIRECTORY if self.directory_part_size.is_some() => error("E2BIG"),
            msg::XS_DIRECTORY => {
                let names: Vec<u8> =
                    self.children(&path).iter().flat_map(|name| wire::c_string(name)).collect();
                (msg::XS_DIRECTORY, names)
            }
            msg::XS_DIRECTORY_PART => {
                let Some(size) = self.directory_part_size else { return error("ENOSYS") };
                // Whole names from the byte offset, as many as fit in `size` (at least one);
                // the last part ends with an empty name.
                let offset: usize = std::str::from_utf8(strings[1]).unwrap().parse().unwrap();
                let mut reply = b"7\0".to_vec();
                let (mut at, mut taken) = (0, 0);
                let children = self.children(&path);
                let mut rest = children.iter().peekable();
                while let Some(name) = rest.next() {
                    let bytes = wire::c_string(name);
                    if at >= offset && (taken == 0 || taken + bytes.len() <= size) {
                        taken += bytes.len();
                        reply.extend_from_slice(&bytes);
                    } else if at >= offset {
                        break;
                    }
                    at += bytes.len();
                    if rest.peek().is_none() {
                        reply.push(0);
                    }
                }
                if children.is_empty() {
                    reply.push(0);
                }
                (msg::XS_DIRECTORY_PART, reply)
            }
            msg::XS_GET_PERMS => match self.nodes.get(&path) {
                Some(node) => (msg::XS_GET_PERMS, node.permissions.clone()),
                None => error("ENOENT"),
            },
            msg::XS_SET_PERMS => match self.nodes.get_mut(&path) {
                Some(node) => {
                    node.permissions = payload[first.len() + 1..].to_vec();
                    (msg::XS_SET_PERMS, b"OK\0".to_vec())
                }
                None => error("ENOENT"),
            },
            msg::XS_TRANSACTION_START => {
                self.snapshot = Some(self.nodes.clone());
                let id = self.next_transaction;
                self.next_transaction += 1;
                (msg::XS_TRANSACTION_START, wire::c_string(id.to_string().as_bytes()))
            }
            msg::XS_TRANSACTION_END => {
                let snapshot = self.snapshot.take().expect("a transaction");
                if payload == b"F\0" {
                    self.nodes = snapshot;
                } else if self.eagain_commits > 0 {
                    self.eagain_commits -= 1;
                    self.nodes = snapshot;
                    return error("EAGAIN");
                }
                (msg::XS_TRANSACTION_END, b"OK\0".to_vec())
            }
            msg::XS_WATCH => (msg::XS_WATCH, b"OK\0".to_vec()),
            _ => error("ENOSYS"),
        }
    }
}

fn error(name: &str) -> (u32, Vec<u8>) {
    (msg::XS_ERROR, wire::c_string(name.as_bytes()))
}

/// A message's bytes.
pub fn message(type_: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let header = xsd_sockmsg { type_, req_id: 0, tx_id, len: payload.len() as u32 };
    [encode_header(&header).as_slice(), payload].concat()
}

impl Write for Fake {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        state.inbox.extend_from_slice(bytes);
        while let Some(header) = state.inbox.get(..XSD_SOCKMSG_SIZE) {
            let header = decode_header(header.try_into().unwrap());
            let total = XSD_SOCKMSG_SIZE + header.len as usize;
            if state.inbox.len() < total {
                break;
            }
            let payload = state.inbox[XSD_SOCKMSG_SIZE..total].to_vec();
            state.inbox.drain(..total);
            state.requests.push((header.type_, header.tx_id, payload.clone()));
            let (type_, reply) = state.answer(&header, &payload);
            let mut bytes = message(type_, header.tx_id, &reply);
            if let Some(raw) = state.raw_replies.pop_front() {
                bytes = raw;
            }
            let first_event = (header.type_ == msg::XS_WATCH && type_ == msg::XS_WATCH)
                .then(|| message(msg::XS_WATCH_EVENT, 0, &payload));
            match first_event {
                Some(event) if state.event_before_watch_reply => {
                    state.outbox.extend(event);
                    state.outbox.extend(bytes);
                }
                Some(event) => {
                    state.outbox.extend(bytes);
                    state.outbox.extend(event);
                }
                None => state.outbox.extend(bytes),
            }
        }
        if !state.inbox.is_empty() {
            state.split_writes += 1;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Fake {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        if state.outbox.is_empty() {
            if let Some(event) = state.idle_events.pop_front() {
                state.outbox.extend(message(msg::XS_WATCH_EVENT, 0, &event));
            }
        }
        let mut count = buffer.len().min(state.outbox.len());
        if state.chunk > 0 {
            count = count.min(state.chunk);
        }
        for byte in buffer.iter_mut().take(count) {
            *byte = state.outbox.pop_front().unwrap();
        }
        Ok(count)
    }
}
