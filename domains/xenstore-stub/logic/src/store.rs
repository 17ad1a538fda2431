//! The store: every connection, the tree, and the one entry point per thing the binary does.
//!
//! Exists to turn bytes from a domain into requests, dispatch them (Xen's `process_message()`
//! and `wire_funcs[]`, `tools/xenstore/xenstored_core.c`), and queue the replies and watch events
//! each connection gets. The handlers live in `ops` (nodes), `domain` (domains, watches,
//! transactions) and `control`.
//!
//! Dispatch order, as Xen's: unknown type `ENOSYS`; privileged-only type from an unprivileged
//! connection `EACCES`; unknown transaction id `ENOENT` (doomed one `EAGAIN`); then the handler.
//! A reply echoes the request's type (or `XS_ERROR`), `req_id` and `tx_id`; watch events a
//! request causes are queued before its reply, except `WATCH`'s first event, which follows it.
//!
//! # Deviations from Xen 4.17 (each deliberate)
//! - Quotas are inclusive maxima everywhere; 4.17 lets a domain hold `watches + 1` watches and
//!   `transactions + 1` transactions (its checks use `>`), and later Xen `quota - 1`.
//! - `outstanding` and `watch-events` apply to privileged connections too: they bound memory,
//!   and a control domain that stops reading must not exhaust the stub domain.
//! - No memory quota (`quota-soft`, `memory`): the count quotas and the payload limit bound each
//!   domain's memory instead. No write rate limiting (Xen's `wrl_*`), which needs a clock.
//! - A domain's existence is not checked with the hypervisor: `SET_PERMS` accepts any domid
//!   0-65535 (Xen marks entries of unknown domains ignored); entries of a domain that goes away
//!   (`domain_gone`, `RELEASE`) are marked ignored then.
//! - `INTRODUCE` needs a numeric gfn (Xen ignores it: it maps the ring by grant) and refuses the
//!   caller's own domid; re-introducing an ignored connection revives it. `RELEASE` refuses the
//!   caller and privileged domains. Connections are served in domid order (Xen: creation
//!   order).
//! - A transaction that touches more than `transaction-nodes` nodes while removing a subtree
//!   fails with `ENOSPC` (Xen: `EIO`).
//!
//! # Invariants
//! - Every connection in `connections` is keyed by its domid; at most one per domid.
//! - Nothing a connection sends panics: every length and index from a request is checked.
//! - An ignored connection has no watches, transactions, input or output.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use xenolith_abi::xen::xs_wire::{msg, xsd_sockmsg, XENSTORE_ERROR_PROTO, XENSTORE_PAYLOAD_MAX};

use crate::connection::Connection;
use crate::db::{Fire, FireKind};
use crate::errno::Errno;
use crate::path;
use crate::perms::Perm;
use crate::quota::{self, Quotas};
use crate::tree::Tree;
use crate::watch;
use crate::wire;
use crate::DomId;

/// Where a connection's ring page and event channel are (opaque to the store, kept for the
/// binary across restarts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ring {
    /// The ring page's frame in the domain (as `INTRODUCE` gave it).
    pub gfn: u64,
    /// The event channel port.
    pub port: u32,
}

/// The binary's positions in a connection's rings, kept with the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    /// Request ring consumer index.
    pub req_cons: u32,
    /// Reply ring producer index.
    pub rsp_prod: u32,
}

/// Something the binary must do outside the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// `INTRODUCE`: map the domain's ring, bind the port, start serving it (its transport is
    /// reset to 0/0). Also sent when an introduced domain is introduced again.
    Introduce {
        /// The domain.
        domid: DomId,
        /// Its ring and port.
        ring: Ring,
    },
    /// `RELEASE`: stop serving the domain, unmap its ring, unbind its port.
    Release {
        /// The domain.
        domid: DomId,
    },
    /// `RESUME`: the domain runs again; report its next shutdown with
    /// [`Store::domain_shutdown`].
    Resume {
        /// The domain.
        domid: DomId,
    },
    /// `CONTROL print`: write the text to the log.
    Print {
        /// What to print.
        text: String,
    },
    /// `CONTROL log on|off`: turn request tracing on or off.
    Logging {
        /// On.
        enabled: bool,
    },
}

/// A connection broke the wire protocol; the store ignores it from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A header announced more than `XENSTORE_PAYLOAD_MAX` payload bytes
    /// (`docs/misc/xenstore.txt`: "its xenstored connection will be immediately killed").
    PayloadTooLong {
        /// The announced length.
        len: u32,
    },
}

impl ProtocolError {
    /// The `XENSTORE_ERROR_*` value for the ring page's `error` field.
    pub fn ring_error(&self) -> u32 {
        match self {
            Self::PayloadTooLong { .. } => XENSTORE_ERROR_PROTO,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PayloadTooLong { len } => write!(
                f,
                "a message header announced {len} payload bytes, more than the {XENSTORE_PAYLOAD_MAX} the protocol allows; the connection is no longer served"
            ),
        }
    }
}

/// Why [`Store::add_domain`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddDomainError {
    /// The domain has a connection already.
    Exists,
    /// The id is `DOMID_FIRST_RESERVED` or above.
    Reserved,
}

impl fmt::Display for AddDomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exists => "the domain is connected already; call domain_gone first",
            Self::Reserved => "domain ids from DOMID_FIRST_RESERVED (0x7ff0) up name no domain",
        })
    }
}

/// Figures for logging.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Nodes in the tree.
    pub nodes: usize,
    /// Connections (including ignored ones).
    pub connections: usize,
    /// Watches, all connections.
    pub watches: usize,
    /// Open transactions, all connections.
    pub transactions: usize,
    /// Bytes queued for the binary, all connections.
    pub queued_output: usize,
}

/// A successful reply.
pub(crate) struct Reply {
    /// The payload.
    pub payload: Vec<u8>,
    /// A watch event to queue after the reply (`WATCH`'s first event): path, token.
    pub then_event: Option<(Vec<u8>, Vec<u8>)>,
}

impl Reply {
    /// `OK|`.
    pub(crate) fn ok() -> Self {
        Self::bytes(b"OK\0".to_vec())
    }

    /// A reply carrying `payload`.
    pub(crate) fn bytes(payload: Vec<u8>) -> Self {
        Self { payload, then_event: None }
    }
}

/// The whole xenstored state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    pub(crate) quotas: Quotas,
    pub(crate) tree: Tree,
    pub(crate) generation: u64,
    /// Owner of the initial nodes and of special permissions whose owner went away (Xen's
    /// `dom0_domid` / `priv_domid`).
    pub(crate) root_owner: DomId,
    /// Permissions of `@introduceDomain`.
    pub(crate) introduce_perms: Vec<Perm>,
    /// Permissions of `@releaseDomain`.
    pub(crate) release_perms: Vec<Perm>,
    pub(crate) connections: BTreeMap<DomId, Connection>,
    pub(crate) effects: Vec<Effect>,
    pub(crate) logging: bool,
}

/// Special watch name fired on `INTRODUCE`.
pub(crate) const INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// Special watch name fired on `RELEASE`, domain death and shutdown.
pub(crate) const RELEASE_DOMAIN: &str = "@releaseDomain";

impl Store {
    /// An empty store with Xen's initial tree, owned by domain 0 (Xen's `dom0_domid`).
    pub fn new(quotas: Quotas) -> Self {
        Self::with_root_owner(quotas, 0)
    }

    /// An empty store whose initial nodes (`/`, `/tool`, `/tool/xenstored`, all `n<owner>`) and
    /// special watch permissions belong to `owner` (the control domain, when it is not 0).
    pub fn with_root_owner(quotas: Quotas, owner: DomId) -> Self {
        let special = alloc::vec![Perm::new(owner, 0)];
        Self {
            quotas,
            tree: Tree::new(owner),
            generation: 0,
            root_owner: owner,
            introduce_perms: special.clone(),
            release_perms: special,
            connections: BTreeMap::new(),
            effects: Vec::new(),
            logging: false,
        }
    }

    /// The quotas in force (`CONTROL quota set` changes them).
    pub fn quotas(&self) -> Quotas {
        self.quotas
    }

    /// Whether `CONTROL log on` is in force.
    pub fn logging(&self) -> bool {
        self.logging
    }

    /// Whether `domid` has a connection that is served (not ignored for a protocol error).
    pub fn is_connected(&self, domid: DomId) -> bool {
        self.connections.get(&domid).is_some_and(|conn| !conn.ignored)
    }

    /// Whether `domid` broke the protocol and is no longer served (it stays introduced).
    pub fn is_ignored(&self, domid: DomId) -> bool {
        self.connections.get(&domid).is_some_and(|conn| conn.ignored)
    }

    /// The served connections, in domid order.
    pub fn connections(&self) -> impl Iterator<Item = DomId> + '_ {
        self.connections.iter().filter(|(_, conn)| !conn.ignored).map(|(&domid, _)| domid)
    }

    /// Where `domid`'s ring and port are.
    pub fn ring(&self, domid: DomId) -> Option<Ring> {
        self.connections.get(&domid).and_then(|conn| conn.ring)
    }

    /// The binary's ring positions for `domid`.
    pub fn transport(&self, domid: DomId) -> Option<Transport> {
        self.connections.get(&domid).map(|conn| conn.transport)
    }

    /// Stores the binary's ring positions for `domid` (ignored if it has no connection).
    pub fn set_transport(&mut self, domid: DomId, transport: Transport) {
        if let Some(conn) = self.connections.get_mut(&domid) {
            conn.transport = transport;
        }
    }

    /// Feeds bytes read from `domid`'s request ring and processes every request they complete.
    ///
    /// Returns how many bytes were consumed: all of them, or fewer when `outstanding` replies
    /// wait for the binary (back-pressure: leave the rest in the ring and call again after
    /// [`Store::consume_output`]), or 0 for an unknown or ignored connection. A header that
    /// announces more than `XENSTORE_PAYLOAD_MAX` bytes is a protocol violation: the connection
    /// is ignored from then on (its watches, transactions and output dropped, as Xen's
    /// `ignore_connection()`), and the error says what to put in the ring's `error` field.
    pub fn receive(&mut self, domid: DomId, bytes: &[u8]) -> Result<usize, ProtocolError> {
        let outstanding = self.quotas.outstanding;
        let mut used = 0;
        loop {
            let Some(conn) = self.connections.get_mut(&domid) else { return Ok(used) };
            let rest = bytes.get(used..).unwrap_or(&[]);
            if conn.ignored || rest.is_empty() {
                return Ok(used);
            }
            if conn.input.is_empty() && conn.replies >= outstanding {
                return Ok(used);
            }
            if conn.input.len() < wire::HEADER_SIZE {
                let take = (wire::HEADER_SIZE - conn.input.len()).min(rest.len());
                conn.input.extend_from_slice(rest.get(..take).unwrap_or(&[]));
                used += take;
                if conn.input.len() < wire::HEADER_SIZE {
                    return Ok(used);
                }
            }
            let Some(header) = wire::parse_header(&conn.input) else { return Ok(used) };
            if header.len as usize > XENSTORE_PAYLOAD_MAX {
                conn.reset();
                conn.ignored = true;
                return Err(ProtocolError::PayloadTooLong { len: header.len });
            }
            let total = wire::HEADER_SIZE + header.len as usize;
            let rest = bytes.get(used..).unwrap_or(&[]);
            let take = total.saturating_sub(conn.input.len()).min(rest.len());
            conn.input.extend_from_slice(rest.get(..take).unwrap_or(&[]));
            used += take;
            if conn.input.len() < total {
                return Ok(used);
            }
            let message = core::mem::take(&mut conn.input);
            let payload = message.get(wire::HEADER_SIZE..).unwrap_or(&[]);
            self.process(domid, header, payload);
        }
    }

    /// The first contiguous chunk of bytes waiting for `domid`'s reply ring (empty if none).
    pub fn output(&self, domid: DomId) -> &[u8] {
        self.connections.get(&domid).map_or(&[], |conn| conn.pending())
    }

    /// Every output byte queued for `domid` (all messages; [`Store::output`] is only the rest of
    /// the first).
    pub fn output_len(&self, domid: DomId) -> usize {
        self.connections.get(&domid).map_or(0, |conn| conn.output_len())
    }

    /// Acknowledges that `n` bytes of [`Store::output`] were written to the ring.
    pub fn consume_output(&mut self, domid: DomId, n: usize) {
        if let Some(conn) = self.connections.get_mut(&domid) {
            conn.consume(n);
        }
    }

    /// Takes the effects queued since the last call, oldest first.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        core::mem::take(&mut self.effects)
    }

    /// After a restart: dooms every open transaction. Requests in one and its
    /// `TRANSACTION_END` answer `EAGAIN` (so clients retry, as after a conflict); the ids stay
    /// known until then.
    pub fn abort_transactions(&mut self) {
        for conn in self.connections.values_mut() {
            for tx in conn.transactions.values_mut() {
                tx.doomed = true;
            }
        }
    }

    /// Figures for logging.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            nodes: self.tree.len(),
            connections: self.connections.len(),
            ..Stats::default()
        };
        for conn in self.connections.values() {
            stats.watches += conn.watches.len();
            stats.transactions += conn.transactions.len();
            stats.queued_output += conn.output_len();
        }
        stats
    }

    /// Handles one whole request from `domid` and queues its reply.
    fn process(&mut self, domid: DomId, header: xsd_sockmsg, payload: &[u8]) {
        let result = self.dispatch(domid, header, payload);
        let Some(conn) = self.connections.get_mut(&domid) else { return };
        if conn.ignored {
            return;
        }
        match result {
            Ok(reply) => {
                conn.push_reply(header.type_, header.req_id, header.tx_id, &reply.payload);
                if let Some((path, token)) = reply.then_event {
                    conn.push_event(&path, &token, quota::limit(self.quotas.watch_events));
                }
            }
            Err(errno) => {
                let mut payload = Vec::with_capacity(8);
                payload.extend_from_slice(errno.name().as_bytes());
                payload.push(0);
                conn.push_reply(msg::XS_ERROR, header.req_id, header.tx_id, &payload);
            }
        }
    }

    /// Xen's `process_message()`.
    fn dispatch(
        &mut self,
        domid: DomId,
        header: xsd_sockmsg,
        payload: &[u8],
    ) -> Result<Reply, Errno> {
        // (privileged only, ignores tx_id), from Xen's wire_funcs[] flags.
        let (privileged_only, no_tx) = match header.type_ {
            msg::XS_CONTROL
            | msg::XS_INTRODUCE
            | msg::XS_RELEASE
            | msg::XS_IS_DOMAIN_INTRODUCED
            | msg::XS_RESUME
            | msg::XS_SET_TARGET => (true, false),
            msg::XS_WATCH | msg::XS_UNWATCH => (false, true),
            msg::XS_DIRECTORY
            | msg::XS_READ
            | msg::XS_GET_PERMS
            | msg::XS_TRANSACTION_START
            | msg::XS_TRANSACTION_END
            | msg::XS_GET_DOMAIN_PATH
            | msg::XS_WRITE
            | msg::XS_MKDIR
            | msg::XS_RM
            | msg::XS_SET_PERMS
            | msg::XS_RESET_WATCHES
            | msg::XS_DIRECTORY_PART => (false, false),
            _ => return Err(Errno::Nosys),
        };
        let conn = self.connections.get_mut(&domid).ok_or(Errno::Io)?;
        let who = conn.who(domid);
        if privileged_only && !who.privileged {
            return Err(Errno::Acces);
        }
        let tx_id = if no_tx { 0 } else { header.tx_id };
        if tx_id != 0 {
            let tx = conn.transactions.get(&tx_id).ok_or(Errno::Noent)?;
            if tx.doomed {
                if header.type_ == msg::XS_TRANSACTION_END {
                    conn.transactions.remove(&tx_id);
                }
                return Err(Errno::Again);
            }
        }
        match header.type_ {
            msg::XS_WATCH => self.watch(domid, who, payload),
            msg::XS_UNWATCH => self.unwatch(domid, payload),
            msg::XS_TRANSACTION_START => self.transaction_start(domid, who, tx_id),
            msg::XS_TRANSACTION_END => self.transaction_end(domid, who, tx_id, payload),
            msg::XS_RESET_WATCHES => self.reset_watches(domid),
            msg::XS_INTRODUCE => self.introduce(domid, payload),
            msg::XS_RELEASE => self.release(domid, payload),
            msg::XS_RESUME => self.resume(payload),
            msg::XS_SET_TARGET => self.set_target(payload),
            msg::XS_GET_DOMAIN_PATH => self.get_domain_path(payload),
            msg::XS_IS_DOMAIN_INTRODUCED => self.is_domain_introduced(payload),
            msg::XS_CONTROL => self.control(payload),
            node_op => self.node_op(domid, who, tx_id, node_op, payload),
        }
    }

    /// Delivers watch events to every connection with a matching watch that may see them
    /// (Xen's `fire_watches()` loop over connections).
    pub(crate) fn deliver(&mut self, fires: &[Fire]) {
        let cap = quota::limit(self.quotas.watch_events);
        let mut events: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for fire in fires {
            let special = match fire.kind {
                FireKind::Special => match &fire.path[..] {
                    path if path == INTRODUCE_DOMAIN.as_bytes() => Some(&self.introduce_perms[..]),
                    path if path == RELEASE_DOMAIN.as_bytes() => Some(&self.release_perms[..]),
                    _ => None,
                },
                FireKind::Node { .. } => None,
            };
            for (&id, conn) in self.connections.iter_mut() {
                if conn.ignored || conn.watches.is_empty() {
                    continue;
                }
                if !watch::permitted(conn.who(id), fire, special) {
                    continue;
                }
                let mut base = None;
                for watch in
                    conn.watches.iter().filter(|watch| watch.matches(&fire.path, fire.exact))
                {
                    let base = base.get_or_insert_with(|| path::domain_path(u32::from(id)));
                    let event_path = watch.event_path(&fire.path, base.as_bytes());
                    events.push((event_path.to_vec(), watch.token.clone()));
                }
                for (path, token) in events.drain(..) {
                    conn.push_event(&path, &token, cap);
                }
            }
        }
    }

    /// Fires a special event (`@introduceDomain` / `@releaseDomain`).
    pub(crate) fn fire_special(&mut self, name: &str) {
        let fire = Fire { path: name.as_bytes().to_vec(), exact: true, kind: FireKind::Special };
        self.deliver(core::slice::from_ref(&fire));
    }
}
