//! One domain's connection: its half-received request, queued output, watches and transactions.
//!
//! Exists to keep everything that belongs to one client together, so dropping or resetting a
//! connection (Xen's `ignore_connection()`, `domain_conn_reset()`) cannot leave pieces behind,
//! and to own the output queue's accounting: replies count against `outstanding`
//! (back-pressure), watch events against `watch-events` (dropped past it), as Xen's
//! `send_reply()` / `send_event()` do with their quotas.
//!
//! # Invariants
//! - `input` holds less than one whole message: fewer than 16 bytes, or a header announcing at
//!   most `XENSTORE_PAYLOAD_MAX` bytes and fewer payload bytes than that.
//! - `output` holds whole messages; `output_offset` is within the first one (0 if empty).
//! - `replies` / `events` count the non-event / event messages in `output`.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use xenolith_abi::xen::xs_wire::{msg, XENSTORE_PAYLOAD_MAX};

use crate::perms::Who;
use crate::populate::Uuid;
use crate::store::{Ring, Transport};
use crate::transaction::Transaction;
use crate::watch::{self, Watch};
use crate::wire;
use crate::DomId;

/// One queued message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outgoing {
    /// Header and payload.
    pub bytes: Vec<u8>,
    /// A watch event (else a reply).
    pub event: bool,
}

/// A connection (Xen's `struct connection` with its `struct domain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Connection {
    /// The control domain: no permission checks, no quotas except memory bounds.
    pub privileged: bool,
    /// The domain this one acts for (`SET_TARGET`).
    pub target: Option<DomId>,
    /// Where its ring and event channel are (opaque here).
    pub ring: Option<Ring>,
    /// The binary's ring positions.
    pub transport: Transport,
    /// Broke the protocol: nothing is read from or sent to it (Xen's `is_ignored`).
    pub ignored: bool,
    /// `@releaseDomain` fired for its shutdown; `RESUME` clears it.
    pub shutdown: bool,
    /// The request being received.
    pub input: Vec<u8>,
    /// Replies and events not yet taken by the binary.
    pub output: VecDeque<Outgoing>,
    /// Bytes of the first queued message already taken.
    pub output_offset: usize,
    /// Replies in `output`.
    pub replies: u32,
    /// Events in `output`.
    pub events: u32,
    /// Watches, in the order they were set.
    pub watches: Vec<Watch>,
    /// Open transactions by id.
    pub transactions: BTreeMap<u32, Transaction>,
    /// Next transaction id to try (Xen's `next_transaction_id`).
    pub next_transaction_id: u32,
    /// The UUID of the `/vm/<uuid>` written for it at boot (removed when it goes).
    pub vm: Option<Uuid>,
}

impl Connection {
    /// A fresh connection.
    pub(crate) fn new(privileged: bool, ring: Option<Ring>) -> Self {
        Self {
            privileged,
            target: None,
            ring,
            transport: Transport::default(),
            ignored: false,
            shutdown: false,
            input: Vec::new(),
            output: VecDeque::new(),
            output_offset: 0,
            replies: 0,
            events: 0,
            watches: Vec::new(),
            transactions: BTreeMap::new(),
            next_transaction_id: 0,
            vm: None,
        }
    }

    /// The rights-relevant facts of connection `id`.
    pub(crate) fn who(&self, id: DomId) -> Who {
        Who { id, privileged: self.privileged, target: self.target }
    }

    /// Drops watches, transactions, input and output (Xen's `domain_conn_reset()` and
    /// `ignore_connection()`).
    pub(crate) fn reset(&mut self) {
        self.watches.clear();
        self.transactions.clear();
        self.input.clear();
        self.output.clear();
        self.output_offset = 0;
        self.replies = 0;
        self.events = 0;
    }

    /// Queues a reply (Xen's `send_reply()`; an oversized one becomes `E2BIG`).
    pub(crate) fn push_reply(&mut self, type_: u32, req_id: u32, tx_id: u32, payload: &[u8]) {
        let bytes = if payload.len() > XENSTORE_PAYLOAD_MAX {
            wire::encode_message(msg::XS_ERROR, req_id, tx_id, b"E2BIG\0")
        } else {
            wire::encode_message(type_, req_id, tx_id, payload)
        };
        self.output.push_back(Outgoing { bytes, event: false });
        self.replies = self.replies.saturating_add(1);
    }

    /// Queues a watch event (Xen's `send_event()`): over-long events are not sent; an event
    /// identical to a queued one is dropped unless it is special (`@`); past `cap` queued
    /// events, it is dropped.
    pub(crate) fn push_event(&mut self, path: &[u8], token: &[u8], cap: usize) {
        if self.ignored || path.len() + token.len() + 2 > XENSTORE_PAYLOAD_MAX {
            return;
        }
        let payload = watch::event_payload(path, token);
        if path.first() != Some(&b'@')
            && self.output.iter().any(|queued| {
                queued.event && queued.bytes.get(wire::HEADER_SIZE..) == Some(&payload[..])
            })
        {
            return;
        }
        if self.events as usize >= cap {
            return;
        }
        let bytes = wire::encode_message(msg::XS_WATCH_EVENT, 0, 0, &payload);
        self.output.push_back(Outgoing { bytes, event: true });
        self.events = self.events.saturating_add(1);
    }

    /// The rest of the first queued message.
    pub(crate) fn pending(&self) -> &[u8] {
        match self.output.front() {
            Some(first) => first.bytes.get(self.output_offset..).unwrap_or(&[]),
            None => &[],
        }
    }

    /// Marks `n` output bytes as taken.
    pub(crate) fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(first) = self.output.front() else {
                self.output_offset = 0;
                return;
            };
            let left = first.bytes.len().saturating_sub(self.output_offset);
            if n < left {
                self.output_offset += n;
                return;
            }
            n -= left;
            self.output_offset = 0;
            if let Some(done) = self.output.pop_front() {
                if done.event {
                    self.events = self.events.saturating_sub(1);
                } else {
                    self.replies = self.replies.saturating_sub(1);
                }
            }
        }
    }

    /// Queued output bytes (all messages, minus what was taken).
    pub(crate) fn output_len(&self) -> usize {
        self.output.iter().map(|queued| queued.bytes.len()).sum::<usize>() - self.output_offset
    }
}
