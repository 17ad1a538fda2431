//! [`Client`]: requests and replies, watches and transactions over a [`Transport`] (the model
//! is in the [parent module](super)'s documentation).
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use xenolith_abi::xen::xs_wire::{
    msg, XENSTORE_CONNECTED, XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE,
    XENSTORE_SERVER_FEATURE_ERROR, XENSTORE_SERVER_FEATURE_RECONNECTION, XSD_SOCKMSG_SIZE,
    XS_CONNECTION, XS_ERROR_FIELD, XS_REQ_CONS, XS_REQ_PROD, XS_RSP_CONS, XS_RSP_PROD,
    XS_SERVER_FEATURES,
};

use super::{
    encode, expect_ok, parse_directory_part, parse_permissions, parse_transaction_id,
    parse_watch_event, set_permissions_payload, single_string, split_strings, strings, utf8,
    write_payload, Errno, Message, Permission, Receiver, RingError, RingPage, WatchEvent, XsError,
    REPLIES, REQUESTS,
};

/// Most attempts [`Client::transaction`] makes before it returns `EAGAIN`.
pub const MAX_TRANSACTION_ATTEMPTS: u32 = 1000;

/// What the client needs besides the page: the event channel and a clock.
pub trait Transport: RingPage {
    /// Signals the store (sends on the store's event channel).
    fn notify(&mut self);
    /// Waits until the store signals, `deadline` (ns of [`now`](Self::now)) passes, or a short
    /// re-check interval passes, whichever comes first. Whether the store signalled (spurious
    /// `true` is allowed).
    fn wait(&mut self, deadline: Option<u64>) -> bool;
    /// The time, in ns.
    fn now(&self) -> u64;
}

/// What the client counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests sent (raw ones included).
    pub requests: u64,
    /// Transactions [`Client::transaction`] started again after `EAGAIN`.
    pub transaction_retries: u64,
    /// Replies dropped: their `req_id` was not the one awaited.
    pub stray_replies: u64,
    /// Watch events for no watch of this client (dropped).
    pub unmatched_events: u64,
    /// Watch events that did not parse (dropped).
    pub malformed_events: u64,
    /// Notifications re-sent after a wait the store did not end.
    pub nudges: u64,
}

type Callback = Box<dyn FnMut(&WatchEvent)>;

struct Watch {
    path: String,
    token: String,
    callback: Callback,
}

/// A xenstore client over a [`Transport`]; see the module documentation for its model.
pub struct Client<T: Transport> {
    transport: T,
    /// Our producer index of the request ring.
    req_prod: u32,
    /// Our consumer index of the reply ring.
    rsp_cons: u32,
    receiver: Receiver,
    /// A ring error, once seen: the rings are unusable after it.
    broken: Option<RingError>,
    pub(super) next_req_id: u32,
    /// Replies read but not yet claimed.
    replies: VecDeque<Message>,
    /// Watch events read but not yet dispatched.
    events: VecDeque<WatchEvent>,
    watches: Vec<Watch>,
    stats: Stats,
}

impl<T: Transport> Client<T> {
    /// A client on `transport`'s page. If the store offers ring reconnection and a reconnection
    /// is in progress, first waits (without limit) for it to end, as xenstore-ring.txt asks.
    pub fn new(mut transport: T) -> Self {
        while transport.load(XS_SERVER_FEATURES) & XENSTORE_SERVER_FEATURE_RECONNECTION != 0
            && transport.load(XS_CONNECTION) != XENSTORE_CONNECTED
        {
            transport.wait(None);
        }
        transport.read_barrier();
        Self {
            req_prod: transport.load(XS_REQ_PROD),
            rsp_cons: transport.load(XS_RSP_CONS),
            transport,
            receiver: Receiver::default(),
            broken: None,
            next_req_id: 1,
            replies: VecDeque::new(),
            events: VecDeque::new(),
            watches: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutable: for tests that corrupt the page on purpose (writing the page
    /// behind the client's back breaks it).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// What the client counted so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The page's `server_features` (`XENSTORE_SERVER_FEATURE_*`).
    pub fn server_features(&self) -> u32 {
        self.transport.load(XS_SERVER_FEATURES)
    }

    /// The page's `error` field as it stands (`XENSTORE_ERROR_*`; valid only if the store
    /// offers `XENSTORE_SERVER_FEATURE_ERROR`).
    pub fn error_field(&self) -> u32 {
        self.transport.load(XS_ERROR_FIELD)
    }

    fn check_connection(&self) -> Result<(), XsError> {
        if let Some(error) = self.broken {
            return Err(XsError::Ring(error));
        }
        let error = self.error_field();
        if self.server_features() & XENSTORE_SERVER_FEATURE_ERROR != 0 && error != 0 {
            return Err(XsError::Disconnected(error));
        }
        Ok(())
    }

    fn deadline_passed(&self, deadline: Option<u64>) -> bool {
        deadline.is_some_and(|deadline| self.transport.now() >= deadline)
    }

    /// A fresh request id (never 0, which watch events carry).
    pub fn next_request_id(&mut self) -> u32 {
        let id = self.next_req_id;
        self.next_req_id = self.next_req_id.wrapping_add(1).max(1);
        id
    }

    /// Writes `bytes` to the request ring as they are, waiting for room (until `deadline`, if
    /// one is given), and signals the store after every write. For hostile tests: any bytes at
    /// all, a header that lies included. Replies and events that arrive meanwhile are kept.
    pub fn send_bytes(&mut self, bytes: &[u8], deadline: Option<u64>) -> Result<(), XsError> {
        let mut sent = 0;
        while sent < bytes.len() {
            self.check_connection()?;
            let written = REQUESTS
                .produce(&mut self.transport, self.req_prod, &bytes[sent..])
                .map_err(|error| self.break_rings(error))?;
            self.req_prod = self.req_prod.wrapping_add(written as u32);
            sent += written;
            if written > 0 {
                self.transport.notify();
                continue;
            }
            // No room: the store may be waiting for room in the reply ring too.
            self.pump()?;
            if self.deadline_passed(deadline) {
                return Err(XsError::TimedOut);
            }
            if !self.transport.wait(deadline) {
                self.nudge();
            }
        }
        Ok(())
    }

    /// Signals the store again (counted in [`Stats::nudges`]): a store restarted meanwhile may
    /// have missed a notification. The waiting calls do this on their own; a caller of
    /// [`send_request`](Self::send_request), which never waits, does it now and then while a
    /// reply is outstanding.
    pub fn nudge(&mut self) {
        self.stats.nudges += 1;
        self.transport.notify();
    }

    fn break_rings(&mut self, error: RingError) -> XsError {
        self.broken = Some(error);
        XsError::Ring(error)
    }

    /// Reads every whole message in the reply ring: events to the event queue, replies to the
    /// reply queue. Signals the store if it found the ring full (the store may be waiting for
    /// room, as Linux's `xb_read` reasons).
    fn pump(&mut self) -> Result<(), XsError> {
        let mut freed_full_ring = false;
        loop {
            let before = self.rsp_cons;
            let full = self.transport.load(XS_RSP_PROD).wrapping_sub(before) as usize
                >= XENSTORE_RING_SIZE;
            let message = self
                .receiver
                .receive(&mut self.transport, REPLIES, &mut self.rsp_cons)
                .map_err(|error| self.break_rings(error));
            freed_full_ring |= full && self.rsp_cons != before;
            let message = message?;
            match message {
                Some(message) if message.kind() == msg::XS_WATCH_EVENT => {
                    match parse_watch_event(&message.payload) {
                        Ok(event) => self.events.push_back(event),
                        Err(_) => self.stats.malformed_events += 1,
                    }
                }
                Some(message) => self.replies.push_back(message),
                None => break,
            }
        }
        if freed_full_ring {
            self.transport.notify();
        }
        Ok(())
    }

    /// Waits for the reply to request `req_id` (until `deadline`, if one is given), dropping
    /// replies to other requests.
    pub fn wait_reply(&mut self, req_id: u32, deadline: Option<u64>) -> Result<Message, XsError> {
        loop {
            self.pump()?;
            while let Some(reply) = self.replies.pop_front() {
                if reply.header.req_id == req_id {
                    return Ok(reply);
                }
                self.stats.stray_replies += 1;
            }
            self.check_connection()?;
            if self.deadline_passed(deadline) {
                return Err(XsError::TimedOut);
            }
            if !self.transport.wait(deadline) {
                // Nothing came: a store restarted meanwhile may have missed the request's
                // notification.
                self.nudge();
            }
        }
    }

    /// The next reply (any `req_id`) if one has arrived, without waiting. Events are queued.
    pub fn try_receive(&mut self) -> Result<Option<Message>, XsError> {
        self.pump()?;
        Ok(self.replies.pop_front())
    }

    /// Sends a request of type `kind` in transaction `tx_id` (0: none) with `payload` as it is,
    /// without waiting: its `req_id`, whose reply [`try_receive`](Self::try_receive) returns
    /// once it has arrived. [`XsError::RingFull`] (nothing is sent) if the request ring lacks
    /// room for the whole message now, so a message is never left half-written. For a domain
    /// that must never wait on the store (the console domain serves its console while the store
    /// is down): it polls for the reply and [`nudge`](Self::nudge)s now and then.
    pub fn send_request(&mut self, kind: u32, tx_id: u32, payload: &[u8]) -> Result<u32, XsError> {
        if payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(XsError::TooLarge(payload.len()));
        }
        self.check_connection()?;
        let consumer = self.transport.load(XS_REQ_CONS);
        let used = self.req_prod.wrapping_sub(consumer) as usize;
        if used > XENSTORE_RING_SIZE {
            let error = RingError::BadIndex { producer: self.req_prod, consumer };
            return Err(self.break_rings(error));
        }
        if XENSTORE_RING_SIZE - used < XSD_SOCKMSG_SIZE + payload.len() {
            return Err(XsError::RingFull);
        }
        let req_id = self.next_request_id();
        self.stats.requests += 1;
        // There is room for all of it: one write, no wait.
        self.send_bytes(&encode(kind, req_id, tx_id, payload), None)?;
        Ok(req_id)
    }

    /// The next watch event read (any token), without waiting and without running a callback:
    /// for a caller that sets its watches with [`send_request`](Self::send_request). (An event
    /// of a watch set with [`watch`](Self::watch) is taken too; its callback does not run.)
    pub fn next_event(&mut self) -> Result<Option<WatchEvent>, XsError> {
        self.pump()?;
        Ok(self.events.pop_front())
    }

    /// Sends a request of type `kind` in transaction `tx_id` (0: none) with `payload` as it is,
    /// and waits for its reply, which is returned as it is (an `XS_ERROR` too).
    pub fn raw(&mut self, kind: u32, tx_id: u32, payload: &[u8]) -> Result<Message, XsError> {
        self.raw_until(kind, tx_id, payload, None)
    }

    /// [`raw`](Self::raw), giving up at `deadline`: `TimedOut` (a late reply is dropped later).
    pub fn raw_until(
        &mut self,
        kind: u32,
        tx_id: u32,
        payload: &[u8],
        deadline: Option<u64>,
    ) -> Result<Message, XsError> {
        if payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(XsError::TooLarge(payload.len()));
        }
        self.check_connection()?;
        let req_id = self.next_request_id();
        self.stats.requests += 1;
        self.send_bytes(&encode(kind, req_id, tx_id, payload), deadline)?;
        self.wait_reply(req_id, deadline)
    }

    fn request(&mut self, kind: u32, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.raw(kind, tx_id, payload)?.into_result(kind)
    }

    fn path_request(&mut self, kind: u32, tx_id: u32, path: &str) -> Result<Vec<u8>, XsError> {
        self.request(kind, tx_id, &strings(&[path.as_bytes()])?)
    }

    fn read_in(&mut self, tx_id: u32, path: &str) -> Result<Vec<u8>, XsError> {
        self.path_request(msg::XS_READ, tx_id, path)
    }

    fn read_string_in(&mut self, tx_id: u32, path: &str) -> Result<String, XsError> {
        utf8(&self.read_in(tx_id, path)?)
    }

    fn write_in(&mut self, tx_id: u32, path: &str, value: &[u8]) -> Result<(), XsError> {
        expect_ok(&self.request(msg::XS_WRITE, tx_id, &write_payload(path, value)?)?)
    }

    fn mkdir_in(&mut self, tx_id: u32, path: &str) -> Result<(), XsError> {
        expect_ok(&self.path_request(msg::XS_MKDIR, tx_id, path)?)
    }

    fn rm_in(&mut self, tx_id: u32, path: &str) -> Result<(), XsError> {
        expect_ok(&self.path_request(msg::XS_RM, tx_id, path)?)
    }

    fn directory_in(&mut self, tx_id: u32, path: &str) -> Result<Vec<String>, XsError> {
        match self.path_request(msg::XS_DIRECTORY, tx_id, path) {
            Ok(payload) => split_strings(&payload),
            // Too many children for one reply: fetch them in parts.
            Err(XsError::Errno(Errno::E2BIG)) => self.directory_parts(tx_id, path),
            Err(error) => Err(error),
        }
    }

    fn directory_parts(&mut self, tx_id: u32, path: &str) -> Result<Vec<String>, XsError> {
        'again: for _ in 0..MAX_TRANSACTION_ATTEMPTS {
            let mut children = Vec::new();
            let mut generation = None;
            let mut offset = 0usize;
            loop {
                let offset_text = alloc::format!("{offset}");
                let payload = strings(&[path.as_bytes(), offset_text.as_bytes()])?;
                let part = parse_directory_part(&self.request(
                    msg::XS_DIRECTORY_PART,
                    tx_id,
                    &payload,
                )?)?;
                match &generation {
                    Some(first) if *first != part.generation => continue 'again,
                    Some(_) => {}
                    None => generation = Some(part.generation.clone()),
                }
                children.extend(part.children);
                offset += part.length;
                if part.last {
                    return Ok(children);
                }
            }
        }
        Err(XsError::EAGAIN)
    }

    fn get_perms_in(&mut self, tx_id: u32, path: &str) -> Result<Vec<Permission>, XsError> {
        parse_permissions(&self.path_request(msg::XS_GET_PERMS, tx_id, path)?)
    }

    fn set_perms_in(
        &mut self,
        tx_id: u32,
        path: &str,
        permissions: &[Permission],
    ) -> Result<(), XsError> {
        let payload = set_permissions_payload(path, permissions)?;
        expect_ok(&self.request(msg::XS_SET_PERMS, tx_id, &payload)?)
    }

    /// `READ`: the value at `path`.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        self.read_in(0, path)
    }

    /// `READ`, the value as UTF-8 text.
    pub fn read_string(&mut self, path: &str) -> Result<String, XsError> {
        self.read_string_in(0, path)
    }

    /// `WRITE`: stores `value` at `path`, creating it and missing parents.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        self.write_in(0, path, value)
    }

    /// `MKDIR`: makes sure `path` exists.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XsError> {
        self.mkdir_in(0, path)
    }

    /// `RM`: removes `path` and its children.
    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.rm_in(0, path)
    }

    /// `DIRECTORY` (or `DIRECTORY_PART`s, if the list is too long for one reply): the names of
    /// `path`'s children.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        self.directory_in(0, path)
    }

    /// `GET_PERMS`: `path`'s permissions, the owner first.
    pub fn get_perms(&mut self, path: &str) -> Result<Vec<Permission>, XsError> {
        self.get_perms_in(0, path)
    }

    /// `SET_PERMS`: sets `path`'s permissions, the owner first.
    pub fn set_perms(&mut self, path: &str, permissions: &[Permission]) -> Result<(), XsError> {
        self.set_perms_in(0, path, permissions)
    }

    /// `GET_DOMAIN_PATH`: `/local/domain/<domid>`, as the store says.
    pub fn get_domain_path(&mut self, domid: u16) -> Result<String, XsError> {
        let text = alloc::format!("{domid}");
        single_string(&self.request(msg::XS_GET_DOMAIN_PATH, 0, &strings(&[text.as_bytes()])?)?)
    }

    /// `WATCH`: watches `path` (and its children). `callback` gets every event whose token is
    /// `token` (unique among this client's watches), from [`poll_watches`](Self::poll_watches)
    /// or [`wait_watches`](Self::wait_watches) only. The store fires the watch once at once.
    pub fn watch(
        &mut self,
        path: &str,
        token: &str,
        callback: impl FnMut(&WatchEvent) + 'static,
    ) -> Result<(), XsError> {
        if self.watches.iter().any(|watch| watch.token == token) {
            return Err(XsError::TokenInUse);
        }
        let payload = strings(&[path.as_bytes(), token.as_bytes()])?;
        expect_ok(&self.request(msg::XS_WATCH, 0, &payload)?)?;
        self.watches.push(Watch {
            path: String::from(path),
            token: String::from(token),
            callback: Box::new(callback),
        });
        Ok(())
    }

    /// `UNWATCH` of the watch set with `path` and `token`; its callback is dropped (events
    /// still queued for it are dropped too).
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let payload = strings(&[path.as_bytes(), token.as_bytes()])?;
        expect_ok(&self.request(msg::XS_UNWATCH, 0, &payload)?)?;
        self.watches.retain(|watch| !(watch.path == path && watch.token == token));
        Ok(())
    }

    /// `RESET_WATCHES`: the store forgets every watch and transaction of this domain; so does
    /// the client.
    pub fn reset_watches(&mut self) -> Result<(), XsError> {
        expect_ok(&self.request(msg::XS_RESET_WATCHES, 0, b"\0")?)?;
        self.watches.clear();
        Ok(())
    }

    /// Runs the callbacks of the events queued or in the ring now, without waiting. How many
    /// events had a callback.
    pub fn poll_watches(&mut self) -> Result<usize, XsError> {
        self.pump()?;
        Ok(self.dispatch())
    }

    /// Waits until at least one event with a callback arrives (or `deadline` passes, if one is
    /// given) and runs the callbacks of all that are there. How many had a callback (0: the
    /// deadline passed).
    pub fn wait_watches(&mut self, deadline: Option<u64>) -> Result<usize, XsError> {
        loop {
            self.pump()?;
            let dispatched = self.dispatch();
            if dispatched > 0 {
                return Ok(dispatched);
            }
            self.check_connection()?;
            if self.deadline_passed(deadline) {
                return Ok(0);
            }
            self.transport.wait(deadline);
        }
    }

    fn dispatch(&mut self) -> usize {
        let mut dispatched = 0;
        while let Some(event) = self.events.pop_front() {
            match self.watches.iter_mut().find(|watch| watch.token == event.token) {
                Some(watch) => {
                    (watch.callback)(&event);
                    dispatched += 1;
                }
                None => self.stats.unmatched_events += 1,
            }
        }
        dispatched
    }

    /// `TRANSACTION_START`: the new transaction's id.
    pub fn transaction_start(&mut self) -> Result<u32, XsError> {
        parse_transaction_id(&self.request(msg::XS_TRANSACTION_START, 0, b"\0")?)
    }

    /// `TRANSACTION_END` of `tx_id`: commits it if `commit` (`EAGAIN` if another change got in
    /// first), discards it otherwise.
    pub fn transaction_end(&mut self, tx_id: u32, commit: bool) -> Result<(), XsError> {
        let payload: &[u8] = if commit { b"T\0" } else { b"F\0" };
        expect_ok(&self.request(msg::XS_TRANSACTION_END, tx_id, payload)?)
    }

    /// Runs `body` in a transaction and commits it; while the commit (or `body`) fails with
    /// `EAGAIN`, discards and runs it again in a new transaction, up to
    /// [`MAX_TRANSACTION_ATTEMPTS`] times (then `EAGAIN`). Another error of `body` discards the
    /// transaction and is returned. `body` may run several times: it must not keep effects of
    /// an attempt that did not commit.
    pub fn transaction<R>(
        &mut self,
        mut body: impl FnMut(&mut Transaction<'_, T>) -> Result<R, XsError>,
    ) -> Result<R, XsError> {
        for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
            if attempt > 0 {
                self.stats.transaction_retries += 1;
            }
            let id = self.transaction_start()?;
            let outcome = body(&mut Transaction { client: self, id });
            match outcome {
                Ok(value) => match self.transaction_end(id, true) {
                    Ok(()) => return Ok(value),
                    Err(XsError::Errno(Errno::EAGAIN)) => {}
                    Err(error) => return Err(error),
                },
                Err(error) => {
                    // The store may have forgotten the transaction already; either way it is
                    // over.
                    let _ = self.transaction_end(id, false);
                    if error != XsError::EAGAIN {
                        return Err(error);
                    }
                }
            }
        }
        Err(XsError::EAGAIN)
    }
}

/// An open transaction of a [`Client`]: the same operations, inside it.
pub struct Transaction<'a, T: Transport> {
    client: &'a mut Client<T>,
    id: u32,
}

impl<T: Transport> Transaction<'_, T> {
    /// The transaction's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// `READ` in the transaction.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        self.client.read_in(self.id, path)
    }

    /// `READ` in the transaction, as UTF-8 text.
    pub fn read_string(&mut self, path: &str) -> Result<String, XsError> {
        self.client.read_string_in(self.id, path)
    }

    /// `WRITE` in the transaction.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        self.client.write_in(self.id, path, value)
    }

    /// `MKDIR` in the transaction.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XsError> {
        self.client.mkdir_in(self.id, path)
    }

    /// `RM` in the transaction.
    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.client.rm_in(self.id, path)
    }

    /// `DIRECTORY` in the transaction.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        self.client.directory_in(self.id, path)
    }

    /// `GET_PERMS` in the transaction.
    pub fn get_perms(&mut self, path: &str) -> Result<Vec<Permission>, XsError> {
        self.client.get_perms_in(self.id, path)
    }

    /// `SET_PERMS` in the transaction.
    pub fn set_perms(&mut self, path: &str, permissions: &[Permission]) -> Result<(), XsError> {
        self.client.set_perms_in(self.id, path, permissions)
    }

    /// A raw request in the transaction (see [`Client::raw`]).
    pub fn raw(&mut self, kind: u32, payload: &[u8]) -> Result<Message, XsError> {
        self.client.raw(kind, self.id, payload)
    }
}
